fn main() {
    // The window embeds the built UI; say how to build it rather than fail inside a macro.
    if !std::path::Path::new("../ui/dist/index.html").exists() {
        panic!("ui/dist is missing: build the UI first with scripts/build-ui");
    }
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::build();
}
