using ManagedLM.Chat;

namespace ManagedLM.Tests.Chat;

/// <summary>A template knows OpenAI's roles and the ones it names as string literals, and no others.</summary>
public class ChatTemplateRoleTests
{
    private static ChatTemplate Reference(string name) => ChatTemplate.Parse(File.ReadAllText(TestData.Model($"templates/{name}.jinja")));

    [Theory]
    [InlineData("system")]
    [InlineData("developer")]
    [InlineData("user")]
    [InlineData("assistant")]
    [InlineData("tool")]
    [InlineData("function")]
    public void OpenAI_roles_are_known_to_every_template(string role)
    {
        Assert.True(ChatTemplate.ChatML.KnowsRole(role));
        Assert.True(Reference("google-gemma-2-2b-it").KnowsRole(role));
    }

    [Theory]
    [InlineData("wizard")]
    [InlineData("ipython")]
    [InlineData("User")]
    [InlineData(" user")]
    [InlineData("")]
    public void The_ChatML_fallback_knows_no_other_role(string role) => Assert.False(ChatTemplate.ChatML.KnowsRole(role));

    [Fact]
    public void Roles_a_reference_template_names_are_known()
    {
        var llama = Reference("meta-llama-Llama-3.1-8B-Instruct");
        Assert.True(llama.KnowsRole("ipython"));
        Assert.False(llama.KnowsRole("wizard"));
        Assert.True(Reference("mistralai-Mistral-Nemo-Instruct-2407").KnowsRole("tool_results"));
    }

    [Fact]
    public void Only_literals_inside_tags_count()
    {
        var template = ChatTemplate.Parse(
            "wizard 'wizard' {# 'sage' #}{% if messages[0].role == \"oracle\" %}{{ 'bard' + \"it's\" }}{% endif %}{{ 'a\\'b' }}");
        Assert.True(template.KnowsRole("oracle"));
        Assert.True(template.KnowsRole("bard"));
        Assert.True(template.KnowsRole("it's"));
        Assert.True(template.KnowsRole("a'b"));
        Assert.False(template.KnowsRole("wizard"));
        Assert.False(template.KnowsRole("sage"));
        Assert.True(template.WithTokens("<s>", "</s>").KnowsRole("oracle"));
    }
}
