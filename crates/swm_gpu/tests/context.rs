//! Adapter selection.

mod common;

use swm_gpu::{AdapterKind, AdapterPreference, GpuContext, GpuError};

#[test]
fn auto_picks_an_adapter_and_names_it() {
    let Some(ctx) = common::ctx() else { return };
    let a = ctx.adapter();
    assert!(!a.name.is_empty());
    println!("adapter: {a}");
    // A hardware adapter is preferred whenever one exists: then Auto must not be software.
    if let Ok(hw) = GpuContext::new(AdapterPreference::Hardware) {
        assert!(hw.adapter().kind.is_hardware());
        assert!(a.kind.is_hardware(), "Auto chose {a} although {} exists", hw.adapter());
    }
}

#[test]
fn software_preference_gives_lavapipe_on_vulkan() {
    let Some(_) = common::ctx() else { return };
    match GpuContext::new(AdapterPreference::Software) {
        Ok(c) => {
            assert_eq!(c.adapter().kind, AdapterKind::Software);
            assert_eq!(c.adapter().backend, "Vulkan");
        }
        // A machine with a GPU but no lavapipe: the error must say what was seen.
        Err(GpuError::NoAdapter { tried, .. }) => assert!(tried.contains("Vulkan"), "{tried}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn no_matching_adapter_is_a_clear_error_naming_what_was_tried() {
    let err = GpuContext::new(AdapterPreference::NameContains("no such adapter 1234".into())).unwrap_err();
    let GpuError::NoAdapter { preference, tried } = &err else { panic!("{err}") };
    assert!(preference.contains("no such adapter 1234"));
    assert!(tried.contains("Vulkan"), "{tried}");
    let msg = err.to_string();
    assert!(msg.contains("tried"), "{msg}");
    // Here (lavapipe installed) the software adapter is among those tried.
    if let Some(ctx) = common::ctx() {
        assert!(tried.contains(&ctx.adapter().name), "{tried}");
    }
}

#[test]
fn grids_cover_any_number_of_workgroups() {
    let Some(mut ctx) = common::ctx() else { return };
    assert_eq!(ctx.grid(0), (0, 0));
    assert_eq!(ctx.grid(1), (1, 1));
    let max = ctx.max_workgroups_per_dim();
    assert!(max >= 65535);
    assert_eq!(ctx.grid(max + 1), (max, 2));
    ctx.set_max_workgroups_per_dim(7);
    let (x, y) = ctx.grid(50);
    assert_eq!((x, y), (7, 8));
}
