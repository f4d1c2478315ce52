//! Kernel compilation: each field's WGSL source (field prelude, Poseidon2 tables and
//! kernel file), its bind group layouts and compute pipelines.

use std::sync::OnceLock;

use proofbox_backend_api::{BackendError, FieldId};
use wgpu::util::DeviceExt;

use crate::gpu::{FieldKernels, Gpu, Kernel, PARAMS_BYTES, Slot};
use crate::tables::{Poseidon2Tables, field_prelude, poseidon2_prelude, poseidon2_tables};

const FIELD_WGSL: &str = include_str!("../../../firmware/wgsl/field.wgsl");
const NTT_WGSL: &str = include_str!("../../../firmware/wgsl/ntt.wgsl");
const POSEIDON2_WGSL: &str = include_str!("../../../firmware/wgsl/poseidon2.wgsl");

fn layout(device: &wgpu::Device, slots: &[(u32, Slot)]) -> wgpu::BindGroupLayout {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = slots
        .iter()
        .map(|&(binding, slot)| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: match slot {
                Slot::Ro => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Slot::Rw => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: false },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                Slot::Uniform => wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
                },
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &entries,
    })
}

/// Compiles the WGSL `src` (module `label`) and makes its kernel `entry` with `slots`.
pub(crate) fn wgsl_kernel(
    device: &wgpu::Device,
    label: &str,
    src: String,
    entry: &'static str,
    slots: &[(u32, Slot)],
) -> Kernel {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(src.into()),
    });
    kernel(device, &module, entry, slots)
}

pub(crate) fn kernel(
    device: &wgpu::Device,
    module: &wgpu::ShaderModule,
    name: &'static str,
    slots: &[(u32, Slot)],
) -> Kernel {
    let layout = layout(device, slots);
    let params_binding = slots
        .iter()
        .find(|(_, s)| matches!(s, Slot::Uniform))
        .map(|(b, _)| *b)
        .expect("every kernel has a parameter block");
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(name),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(&pipeline_layout),
        module,
        entry_point: Some(name),
        compilation_options: Default::default(),
        cache: None,
    });
    Kernel {
        name,
        pipeline,
        layout,
        params_binding,
    }
}

/// One kernel for each field, both compiled (in one error scope) the first time
/// either is needed.
#[derive(Default)]
pub(crate) struct LazyFieldKernels(OnceLock<[Kernel; 2]>);

impl LazyFieldKernels {
    /// The kernel of `field`, built with `build` for every field on first use;
    /// `what` names the build in errors.
    pub(crate) fn get(
        &self,
        gpu: &Gpu,
        what: &str,
        build: impl Fn(FieldId) -> Kernel,
        field: FieldId,
    ) -> Result<&Kernel, BackendError> {
        if self.0.get().is_none() {
            let built = gpu.scoped(what, || Ok(FieldId::ALL.map(&build)))?;
            let _ = self.0.set(built);
        }
        let kernels = self.0.get().expect("set above");
        Ok(match field {
            FieldId::KoalaBear => &kernels[0],
            FieldId::BabyBear => &kernels[1],
        })
    }
}

/// The full WGSL source of a kernel file for one field (and Poseidon2 instance).
pub(crate) fn kernel_source(
    field: FieldId,
    wg_size: u32,
    poseidon: Option<&Poseidon2Tables>,
    body: &str,
) -> String {
    let mut src = field_prelude(field, wg_size);
    if let Some(t) = poseidon {
        src.push_str(&poseidon2_prelude(t));
    }
    src.push_str(FIELD_WGSL);
    src.push_str(body);
    src
}

/// The Poseidon2 kernel file compiled for the width-24 sponge (`hash_leaves`).
pub(crate) fn hash_source(field: FieldId, wg_size: u32) -> Result<String, String> {
    let p24 = poseidon2_tables(field, 24)?;
    Ok(kernel_source(field, wg_size, Some(&p24), POSEIDON2_WGSL))
}

pub(crate) fn build_field_kernels(
    device: &wgpu::Device,
    field: FieldId,
    wg_size: u32,
) -> Result<FieldKernels, String> {
    let module = |label: &str, src: String| {
        device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        })
    };
    let ntt = module("ntt", kernel_source(field, wg_size, None, NTT_WGSL));
    let p24 = poseidon2_tables(field, 24)?;
    let p16 = poseidon2_tables(field, 16)?;
    let m24 = module(
        "poseidon2-24",
        kernel_source(field, wg_size, Some(&p24), POSEIDON2_WGSL),
    );
    let m16 = module(
        "poseidon2-16",
        kernel_source(field, wg_size, Some(&p16), POSEIDON2_WGSL),
    );
    let init = |label, words: &[u32]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(words),
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    Ok(FieldKernels {
        dif: kernel(
            device,
            &ntt,
            "dif_stage",
            &[(0, Slot::Rw), (1, Slot::Ro), (2, Slot::Uniform)],
        ),
        scatter: kernel(
            device,
            &ntt,
            "scatter_scale",
            &[
                (0, Slot::Rw),
                (1, Slot::Ro),
                (2, Slot::Uniform),
                (3, Slot::Ro),
            ],
        ),
        hash: kernel(
            device,
            &m24,
            "hash_leaves",
            &[
                (0, Slot::Ro),
                (1, Slot::Uniform),
                (2, Slot::Ro),
                (3, Slot::Rw),
                (4, Slot::Rw),
            ],
        ),
        compress: kernel(
            device,
            &m16,
            "compress",
            &[(0, Slot::Ro), (1, Slot::Uniform), (3, Slot::Rw)],
        ),
        rc24: init("poseidon2-24 constants", &p24.words()),
        rc16: init("poseidon2-16 constants", &p16.words()),
    })
}
