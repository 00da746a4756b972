//! Runner `probe` whose declaration has no `run` entry: a null function pointer a
//! plugin not made with `export_plugin!` could hand over.

use std::ffi::c_void;

use async_ffi::FfiFuture;
use autoawait_plugin::abi::{
    CellOut, FfiResult, PluginVTable, RunnerDecl, RunnerHandle, ABI_VERSION,
};

/// Never called: the loader refuses the plugin first.
unsafe extern "C" fn create(_ctx: *const c_void) -> FfiResult<RunnerHandle> {
    FfiResult::Ok(RunnerHandle(std::ptr::null()))
}

unsafe extern "C" fn spawn(_: RunnerHandle, _: u64, _: FfiFuture<u8>) -> FfiResult<u8> {
    FfiResult::Ok(0)
}

unsafe extern "C" fn nothing(_: RunnerHandle) {}

/// The entry point: a hand-made vtable.
#[no_mangle]
pub extern "C" fn autoawait_plugin_v1() -> *const PluginVTable {
    let mut vtable = *autoawait_plugin::PluginBuilder::new("null-fn").build();
    let decl = RunnerDecl {
        name: c"probe".as_ptr(),
        backend: c"test".as_ptr(),
        summary: c"a runner without `run`".as_ptr(),
        strategy: 0,
        capabilities: 0,
        ctx: std::ptr::null(),
        create: Some(create),
        run: None::<
            unsafe extern "C" fn(RunnerHandle, u64, FfiFuture<CellOut>) -> FfiResult<CellOut>,
        >,
        spawn: Some(spawn),
        shutdown: None,
        destroy: Some(nothing),
        has_services: None,
        sleep: None,
        connect: None,
        listen: None,
        check: None,
        hosted_attach: None,
        hosted_fd: None,
        hosted_next: None,
        hosted_turn: None,
    };
    vtable.abi_version = ABI_VERSION;
    vtable.runners = Box::leak(Box::new(decl));
    vtable.runner_count = 1;
    vtable.runner_stride = std::mem::size_of::<RunnerDecl>();
    Box::leak(Box::new(vtable))
}
