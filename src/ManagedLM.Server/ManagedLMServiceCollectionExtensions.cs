using System.Diagnostics;
using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Embeddings;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Server;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a ManagedLM model and what serves it in a service collection.</summary>
public static class ManagedLMServiceCollectionExtensions
{
    /// <summary>
    /// Registers, as singletons over one model: the <see cref="TransformerModel"/> (loaded from
    /// <see cref="ManagedLMOptions.ModelPath"/> when the host starts, disposed with the container), a
    /// <see cref="GeneratorPool"/>, the <see cref="BatchEngine"/> (started with the host; when the host stops it admits no
    /// more requests and lets the running ones finish within the host's shutdown timeout), the <see cref="EmbeddingEngine"/>,
    /// <see cref="IChatClient"/> (a <see cref="ModelChatClient"/>), <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> of
    /// strings (a <see cref="ModelEmbeddingGenerator"/>), and what <c>app.MapOpenAiEndpoints()</c> serves. The options are
    /// checked when the host starts. Services registered before this call are kept: your own <see cref="IChatClient"/>, say,
    /// or a <see cref="TransformerModel"/> you loaded (then <see cref="ManagedLMOptions.ModelPath"/> is not needed, and the
    /// model is yours to dispose).
    /// </summary>
    /// <returns>A builder for a chat client pipeline (<see cref="ManagedLMBuilder.AddChatClient"/>).</returns>
    /// <exception cref="InvalidOperationException">ManagedLM is already registered in <paramref name="services"/>.</exception>
    public static ManagedLMBuilder AddManagedLM(this IServiceCollection services, Action<ManagedLMOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var builder = Add(services, "ManagedLMOptions.");
        services.Configure(configure);
        return builder;
    }

    /// <summary>
    /// As <see cref="AddManagedLM(IServiceCollection, Action{ManagedLMOptions})"/>, with the options bound from
    /// <paramref name="configuration"/> (typically <c>builder.Configuration.GetSection("ManagedLM")</c>: appsettings.json,
    /// and environment variables such as <c>ManagedLM__ModelPath</c> over it), then <paramref name="configure"/>. A key
    /// of the section that is not an option, or a value that does not convert, stops the host with an error naming it.
    /// </summary>
    public static ManagedLMBuilder AddManagedLM(this IServiceCollection services, IConfiguration configuration, Action<ManagedLMOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        var builder = Add(services, configuration is IConfigurationSection section ? section.Path + ":" : "");
        services.AddOptions<ManagedLMOptions>().Bind(configuration, o => o.ErrorOnUnknownConfiguration = true);
        if (configure is not null)
            services.Configure(configure);
        return builder;
    }

    private static ManagedLMBuilder Add(IServiceCollection services, string keyPrefix)
    {
        if (services.Any(d => d.ServiceType == typeof(ManagedLMServices)))
            throw new InvalidOperationException("AddManagedLM was already called on these services: one model per service collection.");
        bool ownModel = services.Any(d => d.ServiceType == typeof(TransformerModel));
        services.AddSingleton(sp => new ManagedLMServices(keyPrefix, sp.GetService<IHostEnvironment>()?.ContentRootPath, ownModel));
        services.AddOptions<ManagedLMOptions>().ValidateOnStart();
        services.AddSingleton<IValidateOptions<ManagedLMOptions>>(sp => new ManagedLMOptionsValidator(sp.GetRequiredService<ManagedLMServices>()));

        services.TryAddSingleton<TransformerModel>(LoadModel);
        services.TryAddSingleton(sp => new ManagedLMTemplate(ReadTemplate(sp)));
        services.TryAddSingleton(sp => new GeneratorPool(sp.GetRequiredService<TransformerModel>(), Options(sp).GeneratorOptions(), Options(sp).MaxConcurrentCalls));
        services.TryAddSingleton(sp =>
        {
            var engine = new BatchEngine(sp.GetRequiredService<TransformerModel>(), Options(sp).EngineOptions());
            Log.EngineStarted(Logger(sp, "ManagedLM"), engine.Options.MaxActiveSequences, engine.ContextLength, engine.Options.MaxQueuedRequests);
            return engine;
        });
        services.TryAddSingleton(sp => new EmbeddingEngine(sp.GetRequiredService<TransformerModel>(), Options(sp).EmbeddingOptions()));
        services.TryAddSingleton(sp => new ModelChatClient(sp.GetRequiredService<TransformerModel>(),
            Options(sp).ChatClientOptions(sp.GetRequiredService<ManagedLMTemplate>().Template)));
        services.TryAddSingleton(sp => new ModelEmbeddingGenerator(sp.GetRequiredService<TransformerModel>(), Options(sp).EmbeddingGeneratorOptions()));
        var chatClient = ServiceDescriptor.Singleton<IChatClient>(sp => sp.GetRequiredService<ModelChatClient>());
        var embeddingGenerator = ServiceDescriptor.Singleton<IEmbeddingGenerator<string, Embedding<float>>>(sp => sp.GetRequiredService<ModelEmbeddingGenerator>());
        services.TryAdd(chatClient);
        services.TryAdd(embeddingGenerator);
        services.TryAddSingleton(sp =>
        {
            var model = sp.GetRequiredService<TransformerModel>();
            var options = Options(sp);
            bool embeddingsOnly = options.EmbeddingsOnly || model.Config.Family.Encoder;
            return new OpenAiApi(model, options.ServerOptions(sp.GetRequiredService<ManagedLMTemplate>().Template),
                embeddingsOnly ? null : sp.GetRequiredService<BatchEngine>(), new Lazy<EmbeddingEngine>(sp.GetRequiredService<EmbeddingEngine>),
                Logger(sp, "ManagedLM.Server"));
        });
        services.AddHostedService<ManagedLMHostedService>();
        return new ManagedLMBuilder(services, chatClient, embeddingGenerator);
    }

    private static ManagedLMOptions Options(IServiceProvider services) => services.GetRequiredService<IOptions<ManagedLMOptions>>().Value;

    internal static ILogger Logger(IServiceProvider services, string category) =>
        services.GetService<ILoggerFactory>()?.CreateLogger(category) ?? NullLogger.Instance;

    // The model of the options, loaded and checked against the context length they ask for.
    private static TransformerModel LoadModel(IServiceProvider services)
    {
        var options = Options(services);
        var keys = services.GetRequiredService<ManagedLMServices>();
        string path = keys.Resolve(options.ModelPath!);
        var logger = Logger(services, "ManagedLM");
        Log.Loading(logger, path);
        var clock = Stopwatch.StartNew();
        var model = TransformerModel.Load(path);
        if (options.ContextLength > model.MaxContextLength)
        {
            model.Dispose();
            throw new OptionsValidationException(Microsoft.Extensions.Options.Options.DefaultName, typeof(ManagedLMOptions),
                [$"{keys.Key(nameof(ManagedLMOptions.ContextLength))}: {options.ContextLength} is longer than the model's context length, {model.MaxContextLength}."]);
        }
        var c = model.Config;
        Log.Loaded(logger, model.Name, c.Architecture, c.BlockCount, c.EmbeddingLength, c.VocabSize, model.MaxContextLength, clock.ElapsedMilliseconds);
        return model;
    }

    // The chat template of ChatTemplatePath (with the model's BOS and EOS), or null for the model's own.
    private static ChatTemplate? ReadTemplate(IServiceProvider services)
    {
        var options = Options(services);
        if (options.ChatTemplatePath is null)
            return null;
        var keys = services.GetRequiredService<ManagedLMServices>();
        var model = services.GetRequiredService<TransformerModel>();
        try
        {
            return ChatTemplate.Parse(File.ReadAllText(keys.Resolve(options.ChatTemplatePath)), model.ChatTemplate.BosToken, model.ChatTemplate.EosToken);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ManagedLM.Chat.Jinja.TemplateException)
        {
            throw new OptionsValidationException(Microsoft.Extensions.Options.Options.DefaultName, typeof(ManagedLMOptions),
                [$"{keys.Key(nameof(ManagedLMOptions.ChatTemplatePath))}: {e.Message}"]);
        }
    }
}

/// <summary>
/// What <c>AddManagedLM</c> registered, to build on: <see cref="AddChatClient"/> turns the registered
/// <see cref="IChatClient"/> into a pipeline (function invocation, logging, caching, OpenTelemetry) over the model's
/// <see cref="ModelChatClient"/>, as Microsoft.Extensions.AI's <c>services.AddChatClient(...)</c> does.
/// </summary>
public sealed class ManagedLMBuilder
{
    private readonly ServiceDescriptor _chatClient;
    private readonly ServiceDescriptor _embeddingGenerator;

    internal ManagedLMBuilder(IServiceCollection services, ServiceDescriptor chatClient, ServiceDescriptor embeddingGenerator)
    {
        Services = services;
        _chatClient = chatClient;
        _embeddingGenerator = embeddingGenerator;
    }

    /// <summary>The service collection ManagedLM is registered in.</summary>
    public IServiceCollection Services { get; }

    /// <summary>
    /// Registers <see cref="IChatClient"/> as a pipeline over the model's <see cref="ModelChatClient"/>, in place of the
    /// plain client: <c>.AddChatClient().UseFunctionInvocation()</c> makes the injected <see cref="IChatClient"/> run the
    /// tools it is given.
    /// </summary>
    public ChatClientBuilder AddChatClient(ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        Services.Remove(_chatClient);
        return Services.AddChatClient(sp => sp.GetRequiredService<ModelChatClient>(), lifetime);
    }

    /// <summary>
    /// Registers <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> of strings as a pipeline over the model's
    /// <see cref="ModelEmbeddingGenerator"/> (caching, logging, OpenTelemetry), in place of the plain generator.
    /// </summary>
    public EmbeddingGeneratorBuilder<string, Embedding<float>> AddEmbeddingGenerator(ServiceLifetime lifetime = ServiceLifetime.Singleton)
    {
        Services.Remove(_embeddingGenerator);
        return Services.AddEmbeddingGenerator(sp => sp.GetRequiredService<ModelEmbeddingGenerator>(), lifetime);
    }
}
