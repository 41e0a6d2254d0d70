//! Every WGSL file in `shaders/` parsed and validated by naga, and every struct shared with
//! Rust laid out identically on both sides.

use std::collections::BTreeSet;
use std::path::Path;

use swm_gpu::layout::shared_layouts;
use swm_gpu::shaders::MODULES;

fn parse(name: &str, src: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(src).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    module
}

#[test]
fn every_shader_file_is_validated() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    assert!(!on_disk.is_empty());
    let mut covered = BTreeSet::new();
    for (name, src, files) in MODULES {
        parse(name, src);
        // The embedded text is the files on disk, in order.
        let joined: Vec<String> = files.iter().map(|f| std::fs::read_to_string(dir.join(f)).unwrap()).collect();
        assert_eq!(*src, joined.join("\n"), "module {name} is not its files {files:?}");
        covered.extend(files.iter().map(|f| f.to_string()));
    }
    let missing: Vec<_> = on_disk.difference(&covered).collect();
    assert!(missing.is_empty(), "WGSL files in no module (so never validated): {missing:?}");
}

#[test]
fn shared_structs_match_naga_layouts() {
    let mut found = BTreeSet::new();
    for (name, src, _) in MODULES {
        let module = parse(name, src);
        for (_, ty) in module.types.iter() {
            let (Some(ty_name), naga::TypeInner::Struct { members, span }) = (&ty.name, &ty.inner) else { continue };
            let Some((_, size, fields)) = shared_layouts().into_iter().find(|(n, _, _)| n == ty_name) else {
                continue;
            };
            assert_eq!(*span as usize, size, "{ty_name} in {name}: WGSL span {span}, Rust size {size}");
            let wgsl: Vec<(String, usize)> =
                members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize)).collect();
            let rust: Vec<(String, usize)> = fields.iter().map(|(f, o)| (f.to_string(), *o)).collect();
            assert_eq!(wgsl, rust, "{ty_name} in {name}: fields and offsets differ");
            found.insert(ty_name.clone());
        }
    }
    let all: BTreeSet<String> = shared_layouts().into_iter().map(|(n, _, _)| n.to_string()).collect();
    assert_eq!(found, all, "shared structs without a WGSL twin");
}
