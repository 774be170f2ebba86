//! bf16 autocast on CUDA without tch's deprecated call.
//!
//! `tch::autocast` calls `at::autocast::set_enabled`, which is deprecated in libtorch 2.11:
//! it prints warnings on every call and uses float16 on CUDA. We call the current
//! device-typed libtorch functions directly (exported C++ symbols of libtorch_cpu, stable
//! across 2.x) to enable autocast for CUDA with bfloat16, once around a whole loop.
use tch::Device;

/// `c10::DeviceType::CUDA` and `c10::ScalarType::BFloat16` (enum classes over int8_t).
const DEVICE_CUDA: i8 = 1;
const SCALAR_BFLOAT16: i8 = 15;

extern "C" {
    #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
    fn set_autocast_enabled(device: i8, enabled: bool);
    #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
    fn is_autocast_enabled(device: i8) -> bool;
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn set_autocast_dtype(device: i8, dtype: i8);
    #[link_name = "_ZN2at8autocast17increment_nestingEv"]
    fn increment_nesting() -> i32;
    #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
    fn decrement_nesting() -> i32;
    #[link_name = "_ZN2at8autocast11clear_cacheEv"]
    fn clear_cache();
    #[link_name = "_ZN2at13globalContextEv"]
    fn global_context() -> *mut std::ffi::c_void;
    #[link_name = "_ZN2at7Context26setDeterministicAlgorithmsEbb"]
    fn set_deterministic_algorithms(context: *mut std::ffi::c_void, on: bool, warn_only: bool);
}

/// cuDNN's mode for a CUDA training run. `train.deterministic`: what
/// `torch.use_deterministic_algorithms(True)` and `torch.backends.cudnn.benchmark = False`
/// do in PyTorch (deterministic cuDNN convolution algorithms, which also covers
/// `cudnn.deterministic`), plus the cuBLAS workspace setting that deterministic cuBLAS
/// needs; the cost is slower convolutions. Otherwise cuDNN benchmark mode: training crops
/// have one size, so autotuning each convolution once pays for itself (the official
/// pipeline leaves it off). CPU runs are deterministic without any of this.
pub fn configure_cudnn(deterministic: bool, device: Device) {
    if !device.is_cuda() {
        return;
    }
    if !deterministic {
        tch::Cuda::cudnn_set_benchmark(true);
        return;
    }
    if std::env::var_os("CUBLAS_WORKSPACE_CONFIG").is_none() {
        // Before the first cuBLAS call (the first forward pass), which reads it.
        std::env::set_var("CUBLAS_WORKSPACE_CONFIG", ":4096:8");
    }
    tch::Cuda::cudnn_set_benchmark(false);
    // SAFETY: `at::globalContext()` returns libtorch's process-wide context object; the
    // setter is a plain non-virtual member function (Itanium ABI: `this` first).
    unsafe { set_deterministic_algorithms(global_context(), true, false) };
}

/// Drops autocast's bf16 copies of the weights. libtorch caches them until the outermost
/// autocast exits; since we stay in autocast for a whole loop, every optimizer step must
/// clear them or later forward passes would use stale weights.
pub fn clear_weight_cache() {
    // SAFETY: plain libtorch calls without arguments.
    unsafe {
        if is_autocast_enabled(DEVICE_CUDA) {
            clear_cache();
        }
    }
}

/// Runs `f` with bf16 autocast when `enabled` and `device` is CUDA; otherwise just runs it.
pub fn bf16_autocast<T>(enabled: bool, device: Device, f: impl FnOnce() -> T) -> T {
    if !enabled || !device.is_cuda() {
        return f();
    }
    // SAFETY: plain libtorch calls with enum values of the declared C++ types; the state is
    // restored below before returning.
    let previous = unsafe {
        let previous = is_autocast_enabled(DEVICE_CUDA);
        set_autocast_dtype(DEVICE_CUDA, SCALAR_BFLOAT16);
        set_autocast_enabled(DEVICE_CUDA, true);
        increment_nesting();
        previous
    };
    let result = f();
    unsafe {
        if decrement_nesting() == 0 {
            clear_cache();
        }
        set_autocast_enabled(DEVICE_CUDA, previous);
    }
    result
}

/// Runs `f` with autocast switched off (then restores it): validation scores in fp32, so
/// that AP is not computed from logits rounded to bf16 (which would create ties).
pub fn without_autocast<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain libtorch calls with enum values of the declared C++ types.
    let previous = unsafe { is_autocast_enabled(DEVICE_CUDA) };
    if !previous {
        return f();
    }
    unsafe { set_autocast_enabled(DEVICE_CUDA, false) };
    let result = f();
    unsafe { set_autocast_enabled(DEVICE_CUDA, true) };
    result
}
