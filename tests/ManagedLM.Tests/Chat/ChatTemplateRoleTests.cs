using ManagedLM.Chat;

namespace ManagedLM.Tests.Chat;

/// <summary>A template knows OpenAI's roles and the strings it compares values with, and no others.</summary>
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
    public void Only_strings_the_template_compares_with_count()
    {
        var template = ChatTemplate.Parse(
            "wizard 'wizard' {# 'sage' #}{% for m in messages %}{% if m['role'] == \"oracle\" %}{{ m['content'] }}" +
            "{% elif 'seer' != m.role %}{{ 'bard' + \"it's\" }}{% elif m.role in ['a\\'b', 'druid'] %}{% endif %}{% endfor %}");
        Assert.True(template.KnowsRole("oracle"));
        Assert.True(template.KnowsRole("seer"));
        Assert.True(template.KnowsRole("a'b"));
        Assert.True(template.KnowsRole("druid"));
        Assert.False(template.KnowsRole("wizard"));   // text outside tags
        Assert.False(template.KnowsRole("sage"));     // a comment
        Assert.False(template.KnowsRole("bard"));     // printed, never compared
        Assert.False(template.KnowsRole("role"));     // a subscript key
        Assert.False(template.KnowsRole("content"));
        Assert.True(template.WithTokens("<s>", "</s>").KnowsRole("oracle"));
    }
}
