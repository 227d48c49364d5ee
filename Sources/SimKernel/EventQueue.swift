// The timed event queue (DESIGN.md, "Time": events are ordered by (tick, sequence
// number), so events at one tick run in the order they were scheduled).

import HeapModule

/// Names a scheduled event so that it can be cancelled.
///
/// An id stays valid after its event ran or was cancelled; cancelling it again is a no-op,
/// even if the queue has since reused the internal slot (the generation tells them apart).
public struct EventID: Hashable, Sendable {
    let slot: UInt32
    let generation: UInt32
}

/// Heap order key. The action lives in a slab beside the heap so that cancelling is O(1)
/// and the heap moves only 24-byte trivial values.
struct EventKey: Comparable {
    let tick: UInt64
    let sequence: UInt64
    let slot: UInt32
    let generation: UInt32

    static func < (a: EventKey, b: EventKey) -> Bool {
        a.tick != b.tick ? a.tick < b.tick : a.sequence < b.sequence
    }
    static func == (a: EventKey, b: EventKey) -> Bool { a.tick == b.tick && a.sequence == b.sequence }
}

/// A priority queue of closures keyed by (tick, sequence) with lazy cancellation.
struct EventQueue {
    private var heap = Heap<EventKey>()
    private var actions: [(() -> Void)?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [UInt32] = []
    private var nextSequence: UInt64 = 0
    /// Events scheduled and neither run nor cancelled.
    private(set) var liveCount = 0

    mutating func insert(at tick: Tick, _ action: @escaping () -> Void) -> EventID {
        let slot: UInt32
        if let free = freeSlots.popLast() {
            slot = free
            actions[Int(slot)] = action
        } else {
            precondition(actions.count < Int(UInt32.max), "event queue: more than 2^32 pending events")
            slot = UInt32(actions.count)
            actions.append(action)
            generations.append(0)
        }
        let generation = generations[Int(slot)]
        heap.insert(EventKey(tick: tick.picoseconds, sequence: nextSequence, slot: slot, generation: generation))
        nextSequence &+= 1
        liveCount += 1
        return EventID(slot: slot, generation: generation)
    }

    /// Cancels a pending event; returns false if it already ran or was cancelled.
    mutating func cancel(_ id: EventID) -> Bool {
        let i = Int(id.slot)
        guard i < actions.count, generations[i] == id.generation, actions[i] != nil else { return false }
        release(slot: i)
        return true
    }

    func isPending(_ id: EventID) -> Bool {
        let i = Int(id.slot)
        return i < actions.count && generations[i] == id.generation && actions[i] != nil
    }

    /// Time of the earliest live event, discarding cancelled entries on the way.
    mutating func peekTime() -> Tick? {
        while let top = heap.min {
            if generations[Int(top.slot)] == top.generation { return Tick(picoseconds: top.tick) }
            _ = heap.removeMin()
        }
        return nil
    }

    /// Removes the earliest live event if it is due at or before `limit`.
    mutating func popDue(notAfter limit: Tick) -> (tick: Tick, action: () -> Void)? {
        guard let t = peekTime(), t <= limit else { return nil }
        let top = heap.removeMin()
        let i = Int(top.slot)
        let action = actions[i]!
        release(slot: i)
        return (t, action)
    }

    private mutating func release(slot i: Int) {
        actions[i] = nil
        // A new generation makes the stale heap entry and any old EventID harmless.
        generations[i] &+= 1
        freeSlots.append(UInt32(i))
        liveCount -= 1
    }
}
