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
///
/// Passive events (a core's next quantum) live in a heap of their own, so that
/// ``peekActiveTime()`` can tell a component how long it may run before something that
/// must see its effects happens, without other cores' quanta cutting it short.
struct EventQueue {
    private var heap = Heap<EventKey>()
    private var passive = Heap<EventKey>()
    private var actions: [(() -> Void)?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [UInt32] = []
    private var nextSequence: UInt64 = 0
    /// Events scheduled and neither run nor cancelled.
    private(set) var liveCount = 0

    mutating func insert(at tick: Tick, passive isPassive: Bool = false, _ action: @escaping () -> Void) -> EventID {
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
        let key = EventKey(tick: tick.picoseconds, sequence: nextSequence, slot: slot, generation: generation)
        if isPassive { passive.insert(key) } else { heap.insert(key) }
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

    /// The earliest live key of the ordinary heap, discarding cancelled entries on the way.
    private mutating func activeMin() -> EventKey? {
        while let top = heap.min {
            if generations[Int(top.slot)] == top.generation { return top }
            _ = heap.removeMin()
        }
        return nil
    }

    /// The earliest live key of the passive heap, discarding cancelled entries on the way.
    private mutating func passiveMin() -> EventKey? {
        while let top = passive.min {
            if generations[Int(top.slot)] == top.generation { return top }
            _ = passive.removeMin()
        }
        return nil
    }

    /// Time of the earliest live event, passive or not.
    mutating func peekTime() -> Tick? {
        let first: EventKey?
        switch (activeMin(), passiveMin()) {
        case (nil, nil): first = nil
        case (let a?, nil): first = a
        case (nil, let p?): first = p
        case (let a?, let p?): first = min(a, p)
        }
        return first.map { Tick(picoseconds: $0.tick) }
    }

    /// Time of the earliest live event that is not passive.
    mutating func peekActiveTime() -> Tick? {
        activeMin().map { Tick(picoseconds: $0.tick) }
    }

    /// Removes the earliest live event if it is due at or before `limit`.
    mutating func popDue(notAfter limit: Tick) -> (tick: Tick, action: () -> Void)? {
        let a = activeMin(), p = passiveMin()
        let fromPassive: Bool
        switch (a, p) {
        case (nil, nil): return nil
        case (nil, .some): fromPassive = true
        case (.some, nil): fromPassive = false
        case (.some(let a), .some(let p)): fromPassive = p < a
        }
        let key = fromPassive ? p! : a!
        let t = Tick(picoseconds: key.tick)
        guard t <= limit else { return nil }
        _ = fromPassive ? passive.removeMin() : heap.removeMin()
        let i = Int(key.slot)
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
