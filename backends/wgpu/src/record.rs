//! Recorded work: kernel launches (whole buffers and buffer ranges bound) and buffer
//! copies, submitted together as one command buffer by [`crate::gpu::Gpu::submit`].

use crate::gpu::Kernel;

/// A range of a buffer bound to one binding (a window of a resident matrix).
#[derive(Clone, Copy)]
pub(crate) struct Window<'a> {
    pub binding: u32,
    pub buffer: &'a wgpu::Buffer,
    pub offset: u64,
    pub size: u64,
}

/// One kernel launch: `threads` threads, the kernel's storage bindings (whole buffers,
/// then buffer ranges), and the parameter words after `total`/`base`
/// (`width, a, b, c, d, e`).
pub(crate) struct Dispatch<'a> {
    pub kernel: &'a Kernel,
    pub bindings: Vec<(u32, &'a wgpu::Buffer)>,
    pub windows: Vec<Window<'a>>,
    pub threads: u64,
    pub params: [u32; 6],
}

pub(crate) enum Op<'a> {
    Dispatch(Dispatch<'a>),
    Copy {
        src: &'a wgpu::Buffer,
        src_offset: u64,
        dst: &'a wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    },
}

/// A sequence of launches and copies submitted as one command buffer.
#[derive(Default)]
pub(crate) struct Recorder<'a> {
    pub(crate) ops: Vec<Op<'a>>,
}

impl<'a> Recorder<'a> {
    pub fn dispatch(
        &mut self,
        kernel: &'a Kernel,
        bindings: Vec<(u32, &'a wgpu::Buffer)>,
        threads: u64,
        params: [u32; 6],
    ) {
        self.dispatch_windowed(kernel, bindings, Vec::new(), threads, params);
    }

    /// A launch that binds buffer ranges (`windows`) besides whole buffers.
    pub fn dispatch_windowed(
        &mut self,
        kernel: &'a Kernel,
        bindings: Vec<(u32, &'a wgpu::Buffer)>,
        windows: Vec<Window<'a>>,
        threads: u64,
        params: [u32; 6],
    ) {
        if threads > 0 {
            self.ops.push(Op::Dispatch(Dispatch {
                kernel,
                bindings,
                windows,
                threads,
                params,
            }));
        }
    }

    pub fn copy(
        &mut self,
        src: &'a wgpu::Buffer,
        src_offset: u64,
        dst: &'a wgpu::Buffer,
        dst_offset: u64,
        size: u64,
    ) {
        if size > 0 {
            self.ops.push(Op::Copy {
                src,
                src_offset,
                dst,
                dst_offset,
                size,
            });
        }
    }
}
