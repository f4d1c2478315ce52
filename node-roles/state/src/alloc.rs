//! The allocator of the state tree's maps: the global allocator, with the tables of a
//! large tree backed by transparent huge pages where Linux offers them.
//!
//! A tree of a million keys is hundreds of MB of hash tables read at random places;
//! with 4 KiB pages nearly every read also misses the TLB, and the page walk costs
//! more cache misses. `madvise(MADV_HUGEPAGE)` asks for 2 MiB pages for a table, which
//! the kernel grants when its transparent huge pages are `always` or `madvise`
//! (`/sys/kernel/mm/transparent_hugepage/enabled`); elsewhere this is the global
//! allocator unchanged.

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator, Global};

/// Tables at least this large are advised to use huge pages (smaller ones would round
/// up to a whole 2 MiB page).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const HUGE_MIN: usize = 4 << 20;

/// The global allocator, advising huge pages for allocations of [`HUGE_MIN`] bytes or
/// more.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HugePages;

// SAFETY: every block comes from and goes back to `Global` with the same layout;
// `madvise` only changes how the kernel backs the pages, never their contents.
unsafe impl Allocator for HugePages {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = Global.allocate(layout)?;
        advise(block);
        Ok(block)
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let block = Global.allocate_zeroed(layout)?;
        advise(block);
        Ok(block)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: `ptr` was allocated by `Global` with `layout` (the caller's contract).
        unsafe { Global.deallocate(ptr, layout) }
    }
}

/// Advises huge pages for the whole 4 KiB pages inside a large block.
#[cfg(target_os = "linux")]
fn advise(block: NonNull<[u8]>) {
    if block.len() < HUGE_MIN {
        return;
    }
    const PAGE: usize = 4096;
    let start = block.cast::<u8>().as_ptr() as usize;
    let first = start.next_multiple_of(PAGE);
    let end = (start + block.len()) / PAGE * PAGE;
    if end > first {
        // SAFETY: the range lies within a block this process owns; MADV_HUGEPAGE
        // changes no data and may fail harmlessly (huge pages off), which is ignored.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_block: NonNull<[u8]>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_blocks_hold_their_contents() {
        for size in [64, HUGE_MIN, 3 * HUGE_MIN + 12_345] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            let block = HugePages.allocate_zeroed(layout).unwrap();
            let p = block.cast::<u8>().as_ptr();
            // SAFETY: `block` is `size` bytes this test owns until deallocated below.
            unsafe {
                assert!((0..size).step_by(4093).all(|i| *p.add(i) == 0));
                for i in (0..size).step_by(4093) {
                    *p.add(i) = (i % 251) as u8;
                }
                assert!(
                    (0..size)
                        .step_by(4093)
                        .all(|i| *p.add(i) == (i % 251) as u8)
                );
                HugePages.deallocate(block.cast(), layout);
            }
        }
        // A map in these blocks grows, shrinks and clones like any other.
        let mut m: hashbrown::HashMap<u64, u64, hashbrown::DefaultHashBuilder, HugePages> =
            Default::default();
        m.extend((0..400_000u64).map(|i| (i, i * 3)));
        let c = m.clone();
        m.retain(|k, _| k % 2 == 0);
        m.shrink_to_fit();
        assert!(c.iter().all(|(k, v)| *v == k * 3) && c.len() == 400_000);
        assert!(m.iter().all(|(k, v)| k % 2 == 0 && *v == k * 3) && m.len() == 200_000);
    }
}
