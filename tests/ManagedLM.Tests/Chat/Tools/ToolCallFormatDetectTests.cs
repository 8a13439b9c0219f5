using ManagedLM.Chat.Tools;

namespace ManagedLM.Tests.Chat.Tools;

public class ToolCallFormatDetectTests
{
    [Theory]
    [InlineData("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "hermes")]
    [InlineData("NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "hermes")]
    [InlineData("Qwen-Qwen2.5-7B-Instruct", "hermes")]
    [InlineData("meta-llama-Llama-3.1-8B-Instruct", "llama3")]
    [InlineData("meta-llama-Llama-3.2-3B-Instruct", "llama3")]
    [InlineData("meta-llama-Llama-3.3-70B-Instruct", "llama3")]
    [InlineData("mistralai-Mistral-Nemo-Instruct-2407", "mistral-nemo")]
    [InlineData("meetkai-functionary-medium-v3.2", "functionary-v3.2")]
    [InlineData("CohereForAI-c4ai-command-r7b-12-2024-tool_use", "command-r7b")]
    [InlineData("deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "deepseek-r1")]
    [InlineData("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "deepseek-r1")]
    [InlineData("llama-cpp-deepseek-r1", "deepseek-r1")]
    [InlineData("google-gemma-2-2b-it", "generic")]
    [InlineData("microsoft-Phi-3.5-mini-instruct", "generic")]
    [InlineData("CohereForAI-c4ai-command-r-plus-tool_use", "generic")]
    public void Detects_the_format_from_the_template(string stem, string format)
    {
        Assert.Equal(format, ToolCallFormat.Detect(ToolTemplates.Load(stem)).Name);
        Assert.Same(ToolCallFormat.Detect(ToolTemplates.Load(stem)), ToolCallFormat.FromName(format));
    }

    [Fact]
    public void The_chatml_fallback_uses_the_generic_format() =>
        Assert.Same(ToolCallFormat.Generic, ToolCallFormat.Detect(ManagedLM.Chat.ChatTemplate.ChatML));

    /// <summary>
    /// The template's own rendering of the conversation's assistant tool call (the text from the assistant's header to
    /// its end of turn) parses back to that call: our parsers read what the templates write, arguments as an object or,
    /// as these templates print the conversation's arguments, as a JSON string holding the object.
    /// </summary>
    [Theory]
    [InlineData("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "<|im_start|>assistant\n", "<|im_end|>")]
    [InlineData("NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "<|im_start|>assistant\n", "<|im_end|>")]
    [InlineData("Qwen-Qwen2.5-7B-Instruct", "<|im_start|>assistant\n", "<|im_end|>")]
    [InlineData("meta-llama-Llama-3.1-8B-Instruct", "<|end_header_id|>\n\n", "<|eot_id|>")]
    [InlineData("meta-llama-Llama-3.2-3B-Instruct", "<|end_header_id|>\n\n", "<|eot_id|>")]
    [InlineData("meta-llama-Llama-3.3-70B-Instruct", "<|end_header_id|>\n\n", "<|eot_id|>")]
    [InlineData("mistralai-Mistral-Nemo-Instruct-2407", "[/INST]", "</s>")]
    [InlineData("meetkai-functionary-medium-v3.2", "<|end_header_id|>\n\n>>>", "<|eot_id|>")]
    [InlineData("CohereForAI-c4ai-command-r7b-12-2024-tool_use", "<|CHATBOT_TOKEN|>", "<|END_OF_TURN_TOKEN|>")]
    [InlineData("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "<｜Assistant｜>", "<｜end▁of▁sentence｜>")]
    [InlineData("llama-cpp-deepseek-r1", "<｜Assistant｜>", "<｜end▁of▁sentence｜>")]
    public void Parses_the_call_its_template_renders(string stem, string replyStart, string endOfTurn)
    {
        string rendered = ToolTemplates.Render(stem, 3, addGenerationPrompt: false);
        int start = rendered.IndexOf(replyStart, rendered.LastIndexOf("Paris right now?", StringComparison.Ordinal), StringComparison.Ordinal) + replyStart.Length;
        int end = rendered.IndexOf(endOfTurn, start, StringComparison.Ordinal);
        string reply = rendered[start..(end < 0 ? rendered.Length : end)];

        var parsed = ToolCallFormat.Detect(ToolTemplates.Load(stem)).Parse(reply, new ReplyParseOptions { IdSeed = 1 });

        var call = Assert.Single(parsed.ToolCalls);
        Assert.Equal("get_current_weather", call.Name);
        Assert.Equal("""{"location":"Paris, France","unit":"celsius"}""", call.Arguments);
        Assert.Equal("", parsed.Content);
    }

    [Fact]
    public void Knows_when_the_prompt_opens_the_reasoning()
    {
        string prompt = ToolTemplates.Render("llama-cpp-deepseek-r1", 2, addGenerationPrompt: true);
        Assert.True(ToolCallFormat.DeepSeekR1.PromptOpensReasoning(prompt));
        Assert.True(ToolCallFormat.DeepSeekR1.PromptOpensReasoning(ToolTemplates.Render("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", 2, addGenerationPrompt: true)));
        Assert.False(ToolCallFormat.Hermes.PromptOpensReasoning(ToolTemplates.Render("Qwen-Qwen2.5-7B-Instruct", 2, addGenerationPrompt: true)));
        Assert.False(ToolCallFormat.MistralNemo.PromptOpensReasoning(prompt));
    }
}
