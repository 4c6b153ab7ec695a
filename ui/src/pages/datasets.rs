//! Datasets: every version (name, hash, items, variables, source), and an import panel — paste
//! or choose a CSV / JSONL file, preview it (counts, variables, the first items) or see the
//! error with its line, then import it whole.

use milc_api::dataset::{DatasetItem, DatasetPreview, DatasetVersion};
use milc_api::CallError;
use yew::prelude::*;

use crate::components::{gist, local_time, on_select, on_text, ErrorBox};
use crate::ipc;

#[function_component]
pub fn Datasets() -> Html {
    let list = use_state(|| None::<Result<Vec<DatasetVersion>, CallError>>);
    // The version being browsed and the first item shown.
    let browse = use_state(|| None::<(String, u64)>);
    let rev = use_state(|| 0u32);
    {
        let list = list.clone();
        use_effect_with(*rev, move |_| {
            yew::platform::spawn_local(async move { list.set(Some(ipc::datasets_list().await)) });
        });
    }
    let table = match &*list {
        None => html! {},
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok(l)) if l.is_empty() => {
            html! { <p class="muted">{ "No datasets yet: import one below, or run milc datasets import FILE --name NAME." }</p> }
        }
        Some(Ok(l)) => html! {
            <table class="grid" id="datasets-table">
                <thead><tr><th>{ "Dataset" }</th><th>{ "Version" }</th><th class="num">{ "Items" }</th><th>{ "Variables" }</th><th>{ "Imported" }</th><th>{ "From" }</th></tr></thead>
                <tbody>
                    { for l.iter().map(|v| {
                        let (browse, reference) = (browse.clone(), format!("{}@{}", v.dataset, v.hash));
                        html! {
                        <tr key={v.hash.clone()}>
                            <td><button class="small ghost" id={format!("ds-browse-{}", &v.hash[..12])} onclick={Callback::from(move |_: MouseEvent| browse.set(Some((reference.clone(), 0))))}><strong>{ &v.dataset }</strong></button></td>
                            <td class="mono" title={v.hash.clone()}>{ &v.hash[..12] }</td>
                            <td class="num">{ v.items }</td>
                            <td class="mono small">{ v.variables.join(", ") }</td>
                            <td class="mono small">{ local_time(v.created_ms) }</td>
                            <td class="small">{ &v.source }</td>
                        </tr>
                    }}) }
                </tbody>
            </table>
        },
    };
    let items_view = browse.as_ref().map(|(reference, offset)| {
        html! {
            <Items reference={reference.clone()} offset={*offset} on_page={{
                let (browse, reference) = (browse.clone(), reference.clone());
                Callback::from(move |o: u64| browse.set(Some((reference.clone(), o))))
            }} />
        }
    });
    let on_imported = {
        let rev = rev.clone();
        Callback::from(move |_: ()| rev.set(*rev + 1))
    };
    html! {
        <div class="page datasets">
            <header class="page-head"><h1>{ "Datasets" }</h1></header>
            { table }
            { for items_view }
            <Import {on_imported} />
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct ImportProps {
    on_imported: Callback<()>,
}

#[function_component]
fn Import(p: &ImportProps) -> Html {
    let name = use_state(String::new);
    let file = use_state(|| "pasted.jsonl".to_owned());
    let kind = use_state(|| "jsonl".to_owned());
    let text = use_state(String::new);
    let preview = use_state(|| None::<Result<DatasetPreview, CallError>>);
    let outcome = use_state(|| None::<Result<String, CallError>>);

    // Reading a chosen file fills the text area and picks the format from its name.
    let on_file = {
        let (file, kind, text) = (file.clone(), kind.clone(), text.clone());
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            let Some(f) = input.files().and_then(|l| l.get(0)) else {
                return;
            };
            let fname = f.name();
            let (file, kind, text) = (file.clone(), kind.clone(), text.clone());
            yew::platform::spawn_local(async move {
                if let Ok(v) = wasm_bindgen_futures::JsFuture::from(f.text()).await {
                    kind.set(if fname.to_ascii_lowercase().ends_with(".csv") {
                        "csv".into()
                    } else {
                        "jsonl".into()
                    });
                    file.set(fname);
                    text.set(v.as_string().unwrap_or_default());
                }
            });
        })
    };
    let do_preview = {
        let (file, kind, text, preview, outcome) = (
            file.clone(),
            kind.clone(),
            text.clone(),
            preview.clone(),
            outcome.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let (file, kind, text, preview) = (
                (*file).clone(),
                (*kind).clone(),
                (*text).clone(),
                preview.clone(),
            );
            outcome.set(None);
            yew::platform::spawn_local(async move {
                preview.set(Some(ipc::datasets_preview(&file, &kind, &text).await));
            });
        })
    };
    let do_import = {
        let (name, file, kind, text, outcome, done) = (
            name.clone(),
            file.clone(),
            kind.clone(),
            text.clone(),
            outcome.clone(),
            p.on_imported.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let (name, file, kind, text, outcome, done) = (
                (*name).clone(),
                (*file).clone(),
                (*kind).clone(),
                (*text).clone(),
                outcome.clone(),
                done.clone(),
            );
            yew::platform::spawn_local(async move {
                let r = ipc::datasets_import(name.trim(), &file, &kind, &text)
                    .await
                    .map(|i| {
                        let v = &i.version;
                        if i.created {
                            format!(
                                "Imported {} items into {} as version {}",
                                v.items,
                                v.dataset,
                                &v.hash[..12]
                            )
                        } else {
                            format!(
                                "Unchanged: {} already has this content as version {}",
                                v.dataset,
                                &v.hash[..12]
                            )
                        }
                    });
                if r.is_ok() {
                    done.emit(());
                }
                outcome.set(Some(r));
            });
        })
    };
    let preview_html = match &*preview {
        None => html! {},
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="ds-error" /> },
        Some(Ok(pv)) => html! {
            <div id="ds-preview">
                <p class="small">{ format!("{} items ({} with references) · variables: {} · version {}", pv.items, pv.with_expected, pv.variables.join(", "), &pv.hash[..12]) }</p>
                <table class="grid compact">
                    <thead><tr>{ for pv.variables.iter().map(|v| html! { <th class="mono">{ v.clone() }</th> }) }<th>{ "expected" }</th></tr></thead>
                    <tbody>
                        { for pv.first.iter().map(|i| html! {
                            <tr>
                                { for pv.variables.iter().map(|v| html! { <td>{ gist(i.vars.get(v).map_or("", String::as_str), 40) }</td> }) }
                                <td>{ gist(&i.expected.join(" | "), 50) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </div>
        },
    };
    html! {
        <section class="panel import">
            <h2>{ "Import" }</h2>
            <div class="row">
                <label class="inline">{ "Name" }<input id="ds-name" value={(*name).clone()} oninput={{ let n = name.clone(); on_text(move |v| n.set(v)) }} /></label>
                <label class="inline">{ "Format" }
                    <select id="ds-format" onchange={{ let k = kind.clone(); on_select(move |v| k.set(v)) }}>
                        <option value="jsonl" selected={*kind == "jsonl"}>{ "JSONL" }</option>
                        <option value="csv" selected={*kind == "csv"}>{ "CSV" }</option>
                    </select>
                </label>
                <input type="file" accept=".csv,.jsonl,.ndjson" onchange={on_file} />
            </div>
            <textarea id="ds-text" rows="6" placeholder={"{\"question\": \"…\", \"expected\": \"…\"} per line, or CSV with a header row"} value={(*text).clone()} oninput={{ let t = text.clone(); on_text(move |v| t.set(v)) }} />
            <div class="row">
                <button id="ds-preview-btn" onclick={do_preview}>{ "Preview" }</button>
                <button class="primary" id="ds-import" onclick={do_import} disabled={name.trim().is_empty() || text.trim().is_empty()}>{ "Import" }</button>
            </div>
            { preview_html }
            { match &*outcome {
                Some(Ok(t)) => html! { <div class="note ok" id="ds-result">{ t.clone() }</div> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="ds-error" /> },
                None => html! {},
            } }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ItemsProps {
    reference: String,
    offset: u64,
    on_page: Callback<u64>,
}

const PAGE: u64 = 50;

/// A page of a version's items: variables, references and metadata.
#[function_component]
fn Items(p: &ItemsProps) -> Html {
    let page = use_state(|| None::<Result<(DatasetVersion, Vec<DatasetItem>), CallError>>);
    {
        let page = page.clone();
        use_effect_with((p.reference.clone(), p.offset), move |(r, o)| {
            let (r, o) = (r.clone(), *o);
            yew::platform::spawn_local(async move {
                page.set(Some(ipc::datasets_items(&r, o, PAGE).await))
            });
        });
    }
    match &*page {
        None => html! {},
        Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
        Some(Ok((v, items))) => {
            let (prev, next) = (p.on_page.clone(), p.on_page.clone());
            let offset = p.offset;
            html! {
                <section class="panel" id="ds-items">
                    <div class="row">
                        <h2>{ format!("{} · {} · items {}–{} of {}", v.dataset, &v.hash[..12], offset + 1, offset + items.len() as u64, v.items) }</h2>
                        <span class="spacer" />
                        <button class="small" id="ds-prev" disabled={offset == 0} onclick={Callback::from(move |_: MouseEvent| prev.emit(offset.saturating_sub(PAGE)))}>{ "← Previous" }</button>
                        <button class="small" id="ds-next" disabled={offset + PAGE >= v.items} onclick={Callback::from(move |_: MouseEvent| next.emit(offset + PAGE))}>{ "Next →" }</button>
                    </div>
                    <table class="grid compact">
                        <thead><tr><th class="num">{ "#" }</th>{ for v.variables.iter().map(|n| html! { <th class="mono">{ n.clone() }</th> }) }<th>{ "expected" }</th><th>{ "metadata" }</th></tr></thead>
                        <tbody>
                            { for items.iter().enumerate().map(|(i, item)| html! {
                                <tr>
                                    <td class="num">{ offset + i as u64 }</td>
                                    { for v.variables.iter().map(|n| html! { <td>{ gist(item.vars.get(n).map_or("", String::as_str), 50) }</td> }) }
                                    <td>{ gist(&item.expected.join(" | "), 60) }</td>
                                    <td class="mono small">{ if item.metadata.is_empty() { String::new() } else { serde_json::to_string(&item.metadata).unwrap_or_default() } }</td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                </section>
            }
        }
    }
}
