//! The device: adapter selection, the wgpu device and queue, buffers, pipelines, read-back.
//!
//! # Adapter selection ([`GpuContext::new`])
//! Vulkan adapters are enumerated first; with [`AdapterPreference::Auto`] the best is a
//! discrete GPU, then an integrated one, then a virtual one, then any other hardware
//! adapter, and without hardware the software implementation behind Vulkan (Mesa's
//! lavapipe, `DeviceType::Cpu`). The GL backend is asked for a hardware adapter only when
//! Vulkan has no adapter at all (or, for [`AdapterPreference::Hardware`], no hardware one);
//! software GL (llvmpipe) is never used. When nothing fits, [`GpuError::NoAdapter`] lists
//! every backend and adapter tried.

use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::GpuError;

/// Which adapter [`GpuContext::new`] may take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AdapterPreference {
    /// A hardware GPU when there is one, else a software (CPU) Vulkan adapter.
    #[default]
    Auto,
    /// A hardware GPU or an error.
    Hardware,
    /// A software Vulkan adapter (lavapipe) even when a GPU exists (reproducible CI numbers).
    Software,
    /// The first adapter (in the order of `Auto`) whose name contains this text (case-insensitive).
    NameContains(String),
}

/// What kind of adapter a context runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterKind {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    OtherHardware,
    /// A CPU implementation (Mesa's lavapipe / llvmpipe).
    Software,
}

impl AdapterKind {
    fn of(t: wgpu::DeviceType) -> AdapterKind {
        match t {
            wgpu::DeviceType::DiscreteGpu => AdapterKind::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu => AdapterKind::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu => AdapterKind::VirtualGpu,
            wgpu::DeviceType::Cpu => AdapterKind::Software,
            wgpu::DeviceType::Other => AdapterKind::OtherHardware,
        }
    }

    /// Lower is better.
    fn rank(self) -> u8 {
        match self {
            AdapterKind::DiscreteGpu => 0,
            AdapterKind::IntegratedGpu => 1,
            AdapterKind::VirtualGpu => 2,
            AdapterKind::OtherHardware => 3,
            AdapterKind::Software => 4,
        }
    }

    pub fn is_hardware(self) -> bool {
        self != AdapterKind::Software
    }
}

/// The adapter a context runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    pub name: String,
    pub kind: AdapterKind,
    /// `Vulkan`, `Gl`, ...
    pub backend: String,
    pub driver: String,
    pub driver_info: String,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?}, {}, {} {})", self.name, self.kind, self.backend, self.driver, self.driver_info)
    }
}

fn summary(info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        name: info.name.clone(),
        kind: AdapterKind::of(info.device_type),
        backend: format!("{:?}", info.backend),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
    }
}

/// A wgpu device and queue with the helpers the kernels use.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    adapter: AdapterSummary,
    limits: wgpu::Limits,
    max_workgroups_per_dim: u32,
    errors: Arc<Mutex<Vec<String>>>,
    // Keeps the instance alive as long as the device.
    _instance: wgpu::Instance,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.adapter).finish_non_exhaustive()
    }
}

struct Candidate {
    instance: wgpu::Instance,
    adapter: wgpu::Adapter,
    summary: AdapterSummary,
}

fn enumerate(backends: wgpu::Backends) -> (wgpu::Instance, Vec<wgpu::Adapter>) {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        flags: wgpu::InstanceFlags::default(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    (instance, adapters)
}

impl GpuContext {
    /// Opens a device on the adapter chosen by `pref` (module docs).
    pub fn new(pref: AdapterPreference) -> Result<GpuContext, GpuError> {
        let mut tried: Vec<String> = Vec::new();
        let mut candidates: Vec<Candidate> = Vec::new();
        let (vk, vk_adapters) = enumerate(wgpu::Backends::VULKAN);
        if vk_adapters.is_empty() {
            tried.push("Vulkan: no adapter (is libvulkan1 and a driver such as mesa-vulkan-drivers installed?)".into());
        }
        for a in vk_adapters {
            let s = summary(&a.get_info());
            tried.push(format!("Vulkan: {s}"));
            candidates.push(Candidate { instance: vk.clone(), adapter: a, summary: s });
        }
        // GL is probed only when Vulkan has nothing, or a hardware adapter is demanded and
        // Vulkan has none (probing EGL without a display makes Mesa print to stderr).
        let want_gl = match pref {
            AdapterPreference::Software => false,
            AdapterPreference::Auto => candidates.is_empty(),
            _ => !candidates.iter().any(|c| c.summary.kind.is_hardware()),
        };
        if want_gl {
            let (gl, gl_adapters) = enumerate(wgpu::Backends::GL);
            if gl_adapters.is_empty() {
                tried.push("GL: no adapter".into());
            }
            for a in gl_adapters {
                let s = summary(&a.get_info());
                if s.kind.is_hardware() {
                    tried.push(format!("GL: {s}"));
                    candidates.push(Candidate { instance: gl.clone(), adapter: a, summary: s });
                } else {
                    tried.push(format!("GL: {s} (skipped: software GL is not used, only software Vulkan)"));
                }
            }
        }
        // Best first: by kind, then Vulkan before GL, then enumeration order.
        candidates.sort_by_key(|c| (c.summary.kind.rank(), c.summary.backend != "Vulkan"));
        let chosen = candidates.into_iter().find(|c| match &pref {
            AdapterPreference::Auto => true,
            AdapterPreference::Hardware => c.summary.kind.is_hardware(),
            AdapterPreference::Software => !c.summary.kind.is_hardware() && c.summary.backend == "Vulkan",
            AdapterPreference::NameContains(n) => c.summary.name.to_lowercase().contains(&n.to_lowercase()),
        });
        let Some(c) = chosen else {
            return Err(GpuError::NoAdapter { preference: format!("{pref:?}"), tried: tried.join("; ") });
        };
        tracing::info!(adapter = %c.summary, "GPU adapter chosen");
        let limits = c.adapter.limits();
        let (device, queue) = pollster::block_on(c.adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("swm_gpu"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device { adapter: c.summary.to_string(), message: e.to_string() })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            tracing::error!(error = %e, "wgpu error");
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let max_workgroups_per_dim = limits.max_compute_workgroups_per_dimension;
        Ok(GpuContext {
            device,
            queue,
            adapter: c.summary,
            limits,
            max_workgroups_per_dim,
            errors,
            _instance: c.instance,
        })
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Workgroups per dispatch dimension that kernels use (the device's limit unless lowered).
    pub fn max_workgroups_per_dim(&self) -> u32 {
        self.max_workgroups_per_dim
    }

    /// Lowers the workgroups per dispatch dimension (tests use it to exercise the 2-D grids
    /// of large batches with small ones). Clamped to `1..=` the device limit.
    pub fn set_max_workgroups_per_dim(&mut self, n: u32) {
        self.max_workgroups_per_dim = n.clamp(1, self.limits.max_compute_workgroups_per_dimension);
    }

    /// The `(x, y)` grid covering `groups` workgroups (kernels linearise `x + y · num_x`
    /// and skip indices past the end).
    pub fn grid(&self, groups: u32) -> (u32, u32) {
        if groups == 0 {
            return (0, 0);
        }
        let x = groups.min(self.max_workgroups_per_dim);
        (x, groups.div_ceil(x))
    }

    /// Errors wgpu reported since the last call (validation, out of memory), as one error.
    pub fn check(&self) -> Result<(), GpuError> {
        let mut v = self.errors.lock().map_err(|_| GpuError::Wgpu("error sink poisoned".into()))?;
        if v.is_empty() {
            Ok(())
        } else {
            let msg = v.join("; ");
            v.clear();
            Err(GpuError::Wgpu(msg))
        }
    }

    /// Checks a storage buffer size against the device limits.
    pub fn check_size(&self, what: &str, bytes: u64) -> Result<(), GpuError> {
        let limit = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        if bytes > limit { Err(GpuError::TooLarge { what: what.to_string(), bytes, limit }) } else { Ok(()) }
    }

    /// A storage buffer holding `data` (at least 4 bytes: empty inputs get one zero word).
    pub fn storage_init<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer, GpuError> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.check_size(label, bytes.len() as u64)?;
        let zero = [0u8; 4];
        Ok(self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: if bytes.is_empty() { &zero } else { bytes },
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        }))
    }

    /// An uninitialised (zeroed) storage buffer of `bytes` (at least 4).
    pub fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
        self.check_size(label, bytes)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A uniform buffer holding `value`.
    pub fn uniform<T: bytemuck::Pod>(&self, label: &str, value: &T) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// A compute pipeline from WGSL source (bind group layouts derived from the shader).
    pub fn pipeline(&self, label: &str, source: &str, entry_point: &str) -> Result<wgpu::ComputePipeline, GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some(entry_point),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader { shader: label.to_string(), message: e.to_string() });
        }
        Ok(pipeline)
    }

    /// A bind group of `pipeline`'s group 0 with `buffers` at bindings 0, 1, ...
    pub fn bind(&self, pipeline: &wgpu::ComputePipeline, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let at: Vec<(u32, &wgpu::Buffer)> = buffers.iter().enumerate().map(|(i, b)| (i as u32, *b)).collect();
        self.bind_at(pipeline, &at)
    }

    /// A bind group of `pipeline`'s group 0 with each buffer at the binding given (an entry
    /// point of a module uses some of its bindings only).
    pub fn bind_at(&self, pipeline: &wgpu::ComputePipeline, buffers: &[(u32, &wgpu::Buffer)]) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: *i, resource: b.as_entire_binding() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &layout, entries: &entries })
    }

    /// Submits `encoder` and waits for the device.
    pub fn submit_and_wait(&self, encoder: wgpu::CommandEncoder) -> Result<(), GpuError> {
        self.queue.submit([encoder.finish()]);
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Wgpu(e.to_string()))?;
        self.check()
    }

    /// Copies the first `len` elements of `buffer` back to the host.
    pub fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<T>, GpuError> {
        let bytes = (len * std::mem::size_of::<T>()) as u64;
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: bytes.next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read-back") });
        enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes.next_multiple_of(4));
        self.queue.submit([enc.finish()]);
        let result: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let r = result.clone();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |res| {
            if let Ok(mut g) = r.lock() {
                *g = Some(res);
            }
        });
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Wgpu(e.to_string()))?;
        self.check()?;
        let status = result.lock().map_err(|_| GpuError::Wgpu("map poisoned".into()))?.take();
        match status {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(GpuError::Wgpu(format!("mapping the read-back buffer: {e}"))),
            None => return Err(GpuError::Wgpu("read-back buffer was not mapped after waiting".into())),
        }
        let view = staging.slice(..).get_mapped_range();
        let out = bytemuck::pod_collect_to_vec::<u8, T>(&view[..bytes as usize]);
        drop(view);
        staging.unmap();
        Ok(out)
    }
}

/// Records one compute dispatch of `groups` workgroups (a 2-D grid; see [`GpuContext::grid`]).
pub(crate) fn dispatch(
    ctx: &GpuContext,
    enc: &mut wgpu::CommandEncoder,
    pipeline: &wgpu::ComputePipeline,
    bind: &wgpu::BindGroup,
    groups: u32,
) {
    let (x, y) = ctx.grid(groups);
    if x == 0 {
        return;
    }
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind, &[]);
    pass.dispatch_workgroups(x, y, 1);
}
