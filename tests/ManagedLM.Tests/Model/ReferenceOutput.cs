using System.Text.Json;

namespace ManagedLM.Tests.Model;

/// <summary>A llama.cpp reference run (../shared/models/**/*.ref.json.gz): prompt, then greedy steps with top-5 and all logits.</summary>
public sealed record ReferenceOutput(string Model, int[] PromptTokens, int[] GeneratedTokens, ReferenceStep[] Steps)
{
    public static ReferenceOutput Load(string relativePath)
    {
        using var doc = JsonDocument.Parse(TestData.ReadBytes(TestData.Model(relativePath)));
        var root = doc.RootElement;
        var steps = root.GetProperty("steps").EnumerateArray().Select(s => new ReferenceStep(
            s.GetProperty("step").GetInt32(),
            s.GetProperty("argmax").GetInt32(),
            s.GetProperty("top5").EnumerateArray().Select(p => p[0].GetInt32()).ToArray(),
            s.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray())).ToArray();
        return new ReferenceOutput(
            root.GetProperty("model").GetString()!,
            root.GetProperty("prompt_tokens").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
            root.GetProperty("generated_tokens").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
            steps);
    }
}

public sealed record ReferenceStep(int Step, int ArgMax, int[] Top5, float[] Logits);
