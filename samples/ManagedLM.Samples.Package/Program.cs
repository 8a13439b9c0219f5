using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

// The model file: the first argument, else stories260K beside the repository (run from the repository root).
string path = args.Length > 0 ? args[0] : "../shared/models/stories260K.gguf";
using var model = TransformerModel.Load(path);
using var generator = model.CreateGenerator();
string text = generator.Generate("Once upon a time", new GenerationOptions { MaxTokens = 32, Sampling = SamplingOptions.Greedy });
Console.WriteLine(text);
