//! Folded output is linear in the depth of a stack: written with one path buffer, not a copy
//! of the prefix per level. Measured in bytes allocated (deterministic), not time: a
//! quadratic writer allocates ~depth²·frame bytes for one deep stack.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn folded_output_of_a_deep_stack_is_linear() {
    let depth = 20_000;
    let frames: Vec<gocost_flame::Frame> = (0..depth)
        .map(|i| gocost_flame::Frame {
            name: format!("main.f{i}"),
            inline: false,
        })
        .collect();
    let mut tree = gocost_flame::Tree::default();
    tree.add(&frames, 7);
    let before = ALLOCATED.load(Ordering::Relaxed);
    let mut out = Vec::new();
    gocost_flame::write_folded(&tree, &mut out).unwrap();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("main.f0;main.f1;") && text.ends_with(";main.f19999 7\n"));
    assert_eq!(text.lines().count(), 1);
    // Linear: a small multiple of the output (buffer doubling, the line, the output, the
    // frame strings). The quadratic writer allocated ~depth/2 times the output.
    assert!(
        allocated < 20 * text.len() + (1 << 20),
        "{allocated} bytes allocated for {} bytes of output",
        text.len()
    );
}
