using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;

namespace ManagedLM.Tests.Server;

/// <summary>The chat page at / in headless Chromium: it streams a reply at the chosen temperature, Stop ends a reply, and the screenshot shows it.</summary>
public class ChatPageTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task The_page_streams_a_reply_stops_another_and_renders()
    {
        string chromium = await ClientTools.EnsureInstalledAsync();
        string shot = Path.Combine(Path.GetTempPath(), $"managedlm-chat-page-{Guid.NewGuid():N}.png");
        try
        {
            var run = await ClientTools.NodeAsync("chat-page.mjs", fixture.Server.BaseAddress.ToString(), chromium, shot);
            Assert.True(run.ExitCode == 0, run.ToString());
            using var report = JsonDocument.Parse(run.Stdout);
            var r = report.RootElement;
            Assert.Equal("stories260K · context 512", r.GetProperty("model").GetString());
            Assert.Equal("0.00", r.GetProperty("temperature").GetString());
            Assert.False(string.IsNullOrWhiteSpace(r.GetProperty("reply").GetString()));
            Assert.StartsWith("stopped", r.GetProperty("stoppedStats").GetString());
            Assert.Equal(4, r.GetProperty("messages").GetInt32());

            var image = Png.Read(File.ReadAllBytes(shot));
            Assert.Equal((1000, 700), (image.Width, image.Height));
            // Drawn, not blank: text and controls give many colours, and a good part of the page differs from its background.
            var colours = new HashSet<uint>();
            int differing = 0;
            for (int y = 0; y < image.Height; y++)
            {
                for (int x = 0; x < image.Width; x++)
                {
                    uint c = image.Pixel(x, y);
                    colours.Add(c);
                    if (c != image.Pixel(500, 400))
                        differing++;
                }
            }
            Assert.True(colours.Count > 50, $"{colours.Count} colours");
            Assert.InRange(differing / (double)(image.Width * image.Height), 0.05, 0.95);
        }
        finally
        {
            File.Delete(shot);
        }
    }

    /// <summary>Just enough PNG for a screenshot: 8-bit RGB or RGBA, not interlaced.</summary>
    private sealed record Png(int Width, int Height, int Channels, byte[] Pixels)
    {
        public uint Pixel(int x, int y)
        {
            int i = (y * Width + x) * Channels;
            return (uint)(Pixels[i] << 16 | Pixels[i + 1] << 8 | Pixels[i + 2]);
        }

        public static Png Read(byte[] file)
        {
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10], file[..8]);
            int width = 0, height = 0, channels = 0;
            using var idat = new MemoryStream();
            for (int at = 8; at < file.Length;)
            {
                int length = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
                string type = System.Text.Encoding.ASCII.GetString(file, at + 4, 4);
                var data = file.AsSpan(at + 8, length);
                if (type == "IHDR")
                {
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    Assert.Equal(8, data[8]);
                    channels = data[9] switch { 2 => 3, 6 => 4, var t => throw new NotSupportedException($"PNG colour type {t}") };
                    Assert.Equal(0, data[12]);
                }
                else if (type == "IDAT")
                    idat.Write(data);
                at += 12 + length;
            }
            idat.Position = 0;
            using var z = new ZLibStream(idat, CompressionMode.Decompress);
            int stride = width * channels;
            var raw = new byte[height * (stride + 1)];
            z.ReadExactly(raw);
            var pixels = new byte[height * stride];
            for (int y = 0; y < height; y++)
            {
                byte filter = raw[y * (stride + 1)];
                var line = raw.AsSpan(y * (stride + 1) + 1, stride);
                var row = pixels.AsSpan(y * stride, stride);
                var up = y > 0 ? pixels.AsSpan((y - 1) * stride, stride) : new byte[stride];
                for (int i = 0; i < stride; i++)
                {
                    int a = i >= channels ? row[i - channels] : 0, b = up[i], c = i >= channels ? up[i - channels] : 0;
                    row[i] = (byte)(line[i] + filter switch
                    {
                        0 => 0,
                        1 => a,
                        2 => b,
                        3 => (a + b) / 2,
                        4 => Paeth(a, b, c),
                        _ => throw new InvalidDataException($"PNG filter {filter}"),
                    });
                }
            }
            return new Png(width, height, channels, pixels);
        }

        private static int Paeth(int a, int b, int c)
        {
            int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
            return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        }
    }
}
