// Scratch memory for kernels.

/// A heap buffer that only grows (at least doubling) and is reused across calls, so steady-state
/// products allocate nothing. Its contents do not survive a `reserve` that grows it.
public struct GrowingBuffer<T> {
    private var pointer: UnsafeMutablePointer<T>? = nil
    private var capacity = 0

    public init() {}

    public mutating func reserve(_ count: Int) -> UnsafeMutablePointer<T> {
        if pointer == nil || count > capacity {
            pointer?.deallocate()
            capacity = max(count, capacity * 2, 1)
            pointer = .allocate(capacity: capacity)
        }
        return pointer!
    }

    /// Frees the memory; the buffer is empty afterwards (a later `reserve` allocates again).
    public mutating func deallocate() {
        pointer?.deallocate()
        pointer = nil
        capacity = 0
    }
}
