#region readme: hosting
using Microsoft.Extensions.AI;

var builder = WebApplication.CreateBuilder(args);
builder.Services.AddManagedLM(builder.Configuration.GetSection("ManagedLM"))   // appsettings.json, then ManagedLM__* variables
    .AddChatClient()                                                            // the injected IChatClient: the model's, through
    .UseFunctionInvocation();                                                   // a Microsoft.Extensions.AI pipeline

var app = builder.Build();
app.MapOpenAiEndpoints();                                                       // /v1/chat/completions, /v1/models, ... as `managedlm serve`
app.MapGet("/hello", async (IChatClient chat, string? name, CancellationToken cancel) =>
{
    var options = new ChatOptions { MaxOutputTokens = 24, Temperature = 0 };
    return (await chat.GetResponseAsync($"Say hello to {name ?? "the world"}.", options, cancel)).Text;
});
app.Run();
#endregion
