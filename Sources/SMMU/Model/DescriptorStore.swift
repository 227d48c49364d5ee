// Writing an STE or CD into memory, as a driver (or a test standing in for one) does.

import Memory
import SMMUArch

extension PhysicalMemory {
    /// Writes the eight 64-bit words of an STE or CD at `address` (little-endian).
    public func store<D: RawDescriptor>(_ descriptor: D, at address: PhysAddr) throws(MemoryFault) {
        for i in 0 ..< 8 { try write64(descriptor.words[i], at: PhysAddr(address.value &+ UInt64(i) * 8)) }
    }
}
