//! Giving freed memory back to the system once the router is idle.
//!
//! glibc keeps freed heap pages for reuse, so after a burst of large bodies (up to 1 MiB
//! each) the resident set stays near its peak although nothing holds that memory. When no
//! decide request arrived for a while, the supervisor asks the allocator to release it.

/// Idle ticks of the supervisor before memory is trimmed (10 × 50 ms).
pub const IDLE_TICKS_BEFORE_TRIM: u32 = 10;

/// Serves allocations of 64 KiB and more (large message bodies and the buffers they grow)
/// from their own mappings, which go back to the system as soon as they are freed. Call once
/// at start, before other threads exist.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes an allocator tuning knob; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

/// Returns freed heap memory to the system (glibc `malloc_trim`); a no-op elsewhere.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer
    // from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
