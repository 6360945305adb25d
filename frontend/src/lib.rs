//! The WebAssembly entry point: hydrates the pages the server rendered. Nothing else lives here.
#![forbid(unsafe_code)]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // The settings screens are lazily loaded routes (their own wasm chunks): hydration waits
    // for the chunk of the page being shown.
    leptos::mount::hydrate_lazy(pulse_app::App);
}
