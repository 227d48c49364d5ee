// Small internal queues: a FIFO over an array with a moving head, and the list of tasks
// blocked on a primitive (Linux's wait-queue heads and lock wait lists).

import SimKernel

/// A first-in first-out queue; amortised O(1) append and pop, no per-element allocation.
struct Fifo<Element> {
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }
    var first: Element? { head < storage.count ? storage[head] : nil }
    var elements: ArraySlice<Element> { storage[head...] }

    mutating func append(_ e: Element) { storage.append(e) }

    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let e = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 32 && head * 2 >= storage.count {
            // Drop the consumed prefix so popped elements (and what they retain) go away.
            storage.removeFirst(head)
            head = 0
        }
        return e
    }

    /// Removes and returns the first element matching `predicate`.
    mutating func remove(where predicate: (Element) -> Bool) -> Element? {
        guard let i = storage[head...].firstIndex(where: predicate) else { return nil }
        if i == head { return popFirst() }
        return storage.remove(at: i)
    }
}

/// A task blocked in a primitive, with the completion that wakes it.
struct Waiter {
    let id: UInt64
    let task: GuestTask
    /// Resumes the task: `true` when woken, `false` when its timeout fired.
    let completion: SimCompletion<Bool>
    /// Primitive-specific: the rw-semaphore mode, an exclusive-wait flag, or the grace
    /// period a `synchronize_*` caller needs.
    let tag: UInt64
    /// The timeout event, cancelled when the task is woken first.
    let timer: EventID?
}

/// The tasks blocked on one primitive, in arrival order.
final class WaiterList: @unchecked Sendable {
    @exclusivity(unchecked) var items = Fifo<Waiter>()
    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var first: Waiter? { items.first }
    func popFirst() -> Waiter? { items.popFirst() }
    func remove(id: UInt64) -> Waiter? { items.remove { $0.id == id } }
    func remove(where predicate: (Waiter) -> Bool) -> Waiter? { items.remove(where: predicate) }
}
