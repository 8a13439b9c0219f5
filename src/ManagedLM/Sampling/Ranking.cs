namespace ManagedLM.Sampling;

/// <summary>A strict total order: whether <c>a</c> ranks ahead of <c>b</c>.</summary>
internal interface IRankOrder<T>
{
    bool Ahead(in T a, in T b);
}

/// <summary>The reverse of <typeparamref name="TOrder"/>: a heap under it keeps the first-ranked item at the root.</summary>
internal readonly struct Reversed<T, TOrder>(TOrder order) : IRankOrder<T> where TOrder : struct, IRankOrder<T>
{
    public bool Ahead(in T a, in T b) => order.Ahead(b, a);
}

/// <summary>
/// Heap sort and top-k selection under an <see cref="IRankOrder{T}"/> passed as a struct, so the JIT
/// specializes each order and nothing is allocated (Span.Sort with a comparer allocates a delegate or a box).
/// The heaps keep the item that ranks last at the root.
/// </summary>
internal static class Ranking
{
    /// <summary>Sorts <paramref name="items"/>, first-ranked first.</summary>
    public static void Sort<T, TOrder>(Span<T> items, TOrder order) where TOrder : IRankOrder<T>, allows ref struct
    {
        Heapify(items, order);
        SortHeap(items, order);
    }

    /// <summary>
    /// Puts the <paramref name="k"/> first-ranked items in <paramref name="items"/>[..k], sorted;
    /// what is left in items[k..] is unspecified. 0 &lt; k ≤ items.Length.
    /// </summary>
    public static void SelectFirst<T, TOrder>(Span<T> items, int k, TOrder order) where TOrder : IRankOrder<T>, allows ref struct
    {
        var heap = items[..k];
        Heapify(heap, order);
        for (int i = k; i < items.Length; i++)
            Offer(heap, items[i], order);
        SortHeap(heap, order);
    }

    /// <summary>Makes <paramref name="heap"/> a heap: every parent ranks after its children.</summary>
    public static void Heapify<T, TOrder>(Span<T> heap, TOrder order) where TOrder : IRankOrder<T>, allows ref struct
    {
        for (int i = heap.Length / 2 - 1; i >= 0; i--)
            SiftDown(heap, i, order);
    }

    /// <summary>Replaces the heap's last-ranked item with <paramref name="item"/> when the item ranks ahead of it.</summary>
    public static void Offer<T, TOrder>(Span<T> heap, in T item, TOrder order) where TOrder : IRankOrder<T>, allows ref struct
    {
        if (order.Ahead(item, heap[0]))
        {
            heap[0] = item;
            SiftDown(heap, 0, order);
        }
    }

    /// <summary>Sorts a heap first-ranked first, by moving its root (the last-ranked) to the end repeatedly.</summary>
    public static void SortHeap<T, TOrder>(Span<T> heap, TOrder order) where TOrder : IRankOrder<T>, allows ref struct
    {
        for (int end = heap.Length - 1; end > 0; end--)
        {
            (heap[0], heap[end]) = (heap[end], heap[0]);
            SiftDown(heap[..end], 0, order);
        }
    }

    /// <summary>Restores the heap below index <paramref name="i"/>.</summary>
    public static void SiftDown<T, TOrder>(Span<T> heap, int i, TOrder order) where TOrder : IRankOrder<T>, allows ref struct
    {
        int n = heap.Length;
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, last = i;
            if (l < n && order.Ahead(heap[last], heap[l])) last = l;
            if (r < n && order.Ahead(heap[last], heap[r])) last = r;
            if (last == i)
                return;
            (heap[i], heap[last]) = (heap[last], heap[i]);
            i = last;
        }
    }
}
