using System.Diagnostics.CodeAnalysis;
using ManagedLM.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps ManagedLM's OpenAI-compatible endpoints into an ASP.NET Core app.</summary>
public static class OpenAiEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Adds the OpenAI-compatible API of the model that
    /// <see cref="ManagedLMServiceCollectionExtensions.AddManagedLM(IServiceCollection, Action{ManagedLMOptions})"/> registered,
    /// under <paramref name="prefix"/>: <c>POST /v1/chat/completions</c>, <c>/v1/completions</c>, <c>/v1/embeddings</c>,
    /// <c>/v1/rerank</c> (and llama-server's aliases without /v1), <c>GET /v1/models</c>, <c>/v1/models/{id}</c>,
    /// <c>POST /tokenize</c>, <c>/detokenize</c>, and <c>GET /health</c>, <c>/metrics</c> (Prometheus) and the chat page at
    /// <c>/</c>. The API key (<see cref="ManagedLMOptions.ApiKey"/>), the body size limit, errors in OpenAI's shape, the
    /// metrics and the request log apply to these endpoints only, not to the app's others; a wrong method on one of their
    /// paths is an OpenAI-shaped 405. The app's own endpoints at <c>/</c>, <c>/health</c> or <c>/metrics</c> win over the
    /// API's.
    /// </summary>
    /// <returns>The endpoints' group, for conventions such as <c>RequireAuthorization()</c>, <c>RequireCors()</c> or <c>RequireRateLimiting()</c>.</returns>
    /// <exception cref="InvalidOperationException">ManagedLM's services are not registered (<c>AddManagedLM</c>).</exception>
    /// <example>
    /// <code>
    /// var builder = WebApplication.CreateBuilder(args);
    /// builder.Services.AddManagedLM(builder.Configuration.GetSection("ManagedLM"));
    /// var app = builder.Build();
    /// app.MapOpenAiEndpoints();
    /// app.Run();
    /// </code>
    /// </example>
    public static RouteGroupBuilder MapOpenAiEndpoints(this IEndpointRouteBuilder endpoints, [StringSyntax("Route")] string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        var services = endpoints.ServiceProvider;
        if (services.GetService<IServiceProviderIsService>() is { } registered && !registered.IsService(typeof(OpenAiApi)))
            throw new InvalidOperationException("MapOpenAiEndpoints needs ManagedLM's services: call builder.Services.AddManagedLM(...) before builder.Build().");
        // Resolved at the first request, not now: the model loads when the host starts, not when the endpoints are mapped.
        OpenAiApi? api = null;
        return Map(endpoints.MapGroup(prefix), () => api ??= services.GetRequiredService<OpenAiApi>());
    }

    /// <summary>The API's endpoints in <paramref name="group"/>, each run through <see cref="OpenAiApi.Invoke"/>.</summary>
    internal static RouteGroupBuilder Map(RouteGroupBuilder group, Func<OpenAiApi> api)
    {
        // An endpoint: its paths, its method, its metric label, whether it needs no API key, its handler, and whether the
        // app's own endpoint at the same path wins (a higher order).
        void Add(string[] paths, string method, string label, Func<OpenAiApi, HttpContext, Task> handler, bool open = false, bool appWins = false)
        {
            foreach (string path in paths)
            {
                var endpoint = group.MapMethods(path, [method], ctx => api().Invoke(ctx, label, open, c => handler(api(), c)));
                if (appWins)
                    endpoint.WithOrder(1);
                group.Map(path, ctx => api().Invoke(ctx, label, open, OpenAiApi.MethodNotAllowed)).WithOrder(2);
            }
        }

        Add(["/"], HttpMethods.Get, "/", (a, c) => a.Page(c), open: true, appWins: true);
        Add(["/health"], HttpMethods.Get, "/health", (a, c) => a.Health(c), open: true, appWins: true);
        Add(["/metrics"], HttpMethods.Get, "/metrics", (a, c) => a.Metrics(c), appWins: true);
        Add(["/v1/models"], HttpMethods.Get, "/v1/models", (a, c) => a.Models(c));
        Add(["/v1/models/{id}"], HttpMethods.Get, "/v1/models", (a, c) => a.Model(c));
        Add(["/v1/chat/completions", "/chat/completions"], HttpMethods.Post, "/v1/chat/completions", (a, c) => a.ChatCompletions(c));
        Add(["/v1/completions", "/completions"], HttpMethods.Post, "/v1/completions", (a, c) => a.Completions(c));
        Add(["/v1/embeddings", "/embeddings"], HttpMethods.Post, "/v1/embeddings", (a, c) => a.Embed(c));
        Add(["/v1/rerank", "/rerank", "/v1/reranking", "/reranking"], HttpMethods.Post, "/v1/rerank", (a, c) => a.Rerank(c));
        Add(["/tokenize"], HttpMethods.Post, "/tokenize", (a, c) => a.Tokenize(c));
        Add(["/detokenize"], HttpMethods.Post, "/detokenize", (a, c) => a.Detokenize(c));
        return group;
    }
}
