//! Datasets: every version (name, hash, items, variables, source), and an import panel — paste
//! or choose a CSV / JSONL file, preview it (counts, variables, the first items) or see the
//! error with its line, then import it whole. A version's items can be browsed a page at a
//! time, edited (change, delete, add; saved together as a new version) and exported to a file.

use milc_api::dataset::{DatasetEdit, DatasetPreview};
use milc_api::workspace::MemberRole;
use milc_api::{cmd, CallError};
use yew::prelude::*;

use crate::components::{gist, local_time, on_file_text, on_select, on_text, ErrorBox};
use crate::hooks::{use_ipc, use_ipc_with, use_refusal};
use crate::ipc;

#[function_component]
pub fn Datasets() -> Html {
    // The version being browsed and the first item shown.
    let browse = use_state(|| None::<(String, u64)>);
    let rev = use_state(|| 0u32);
    // What the last save said, shown above the version it made.
    let note = use_state(|| None::<String>);
    let list = use_ipc_with(cmd::DatasetsList {}, *rev);
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
                        let (browse, note, reference) = (browse.clone(), note.clone(), format!("{}@{}", v.dataset, v.hash));
                        html! {
                        <tr key={v.hash.clone()}>
                            <td><button class="small ghost" id={format!("ds-browse-{}", &v.hash[..12])} onclick={Callback::from(move |_: MouseEvent| { note.set(None); browse.set(Some((reference.clone(), 0))); })}><strong>{ &v.dataset }</strong></button></td>
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
            // Keyed by version: unsaved edits belong to the version they were made on.
            <Items key={reference.clone()} reference={reference.clone()} offset={*offset} on_page={{
                let (browse, reference) = (browse.clone(), reference.clone());
                Callback::from(move |o: u64| browse.set(Some((reference.clone(), o))))
            }} on_saved={{
                let (browse, rev, note) = (browse.clone(), rev.clone(), note.clone());
                Callback::from(move |(r, said): (String, String)| {
                    browse.set(Some((r, 0)));
                    note.set(Some(said));
                    rev.set(*rev + 1);
                })
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
            if let Some(n) = &*note {
                <div class="note ok" id="ds-saved">{ n.clone() }</div>
            }
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
    let refused_editor = use_refusal(MemberRole::Editor);
    let name = use_state(String::new);
    let file = use_state(|| "pasted.jsonl".to_owned());
    let kind = use_state(|| "jsonl".to_owned());
    let text = use_state(String::new);
    let preview = use_state(|| None::<Result<DatasetPreview, CallError>>);
    let outcome = use_state(|| None::<Result<String, CallError>>);

    // Reading a chosen file fills the text area and picks the format from its name.
    let on_file = {
        let (file, kind, text) = (file.clone(), kind.clone(), text.clone());
        on_file_text(move |name, body| {
            kind.set(if name.to_ascii_lowercase().ends_with(".csv") {
                "csv".into()
            } else {
                "jsonl".into()
            });
            file.set(name);
            text.set(body);
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
                preview.set(Some(
                    ipc::call(cmd::DatasetsPreview { file, kind, text }).await,
                ));
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
                let r = ipc::call(cmd::DatasetsImport {
                    name: name.trim().to_owned(),
                    file,
                    kind,
                    text,
                })
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
                <button class="primary" id="ds-import" title={refused_editor.clone()} onclick={do_import} disabled={name.trim().is_empty() || text.trim().is_empty() || refused_editor.is_some()}>{ "Import" }</button>
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
    /// A new version was saved: its reference and what to tell the user.
    on_saved: Callback<(String, String)>,
}

const PAGE: u64 = 50;

/// A page of a version's items (variables, references, metadata), with edits kept across pages
/// until they are saved as a new version, and export to a file.
#[function_component]
fn Items(p: &ItemsProps) -> Html {
    let refused_editor = use_refusal(MemberRole::Editor);
    let page = use_ipc(cmd::DatasetsItems {
        reference: p.reference.clone(),
        offset: p.offset,
        limit: PAGE,
    });
    // Changes not yet saved, and the item being edited (`None`: a new one) with its text.
    let pending = use_state(DatasetEdit::default);
    let editing = use_state(|| None::<(Option<u64>, String)>);
    let failed = use_state(|| None::<CallError>);
    let Some(Ok((v, items))) = &*page else {
        return match &*page {
            Some(Err(e)) => html! { <ErrorBox error={e.clone()} /> },
            _ => html! {},
        };
    };
    let (prev, next) = (p.on_page.clone(), p.on_page.clone());
    let offset = p.offset;
    let edit = |idx: Option<u64>, text: String| {
        let editing = editing.clone();
        Callback::from(move |_: MouseEvent| editing.set(Some((idx, text.clone()))))
    };
    let toggle_delete = |idx: u64| {
        let pending = pending.clone();
        Callback::from(move |_: MouseEvent| {
            let mut e = (*pending).clone();
            if !e.delete.remove(&idx) {
                e.delete.insert(idx);
                e.set.remove(&idx);
            }
            pending.set(e);
        })
    };
    let keep = {
        let (pending, editing) = (pending.clone(), editing.clone());
        Callback::from(move |_: MouseEvent| {
            let Some((idx, text)) = (*editing).clone() else {
                return;
            };
            let mut e = (*pending).clone();
            match idx {
                Some(i) => {
                    e.delete.remove(&i);
                    e.set.insert(i, text);
                }
                None => e.add.push(text),
            }
            pending.set(e);
            editing.set(None);
        })
    };
    let save = {
        let (pending, failed, on_saved, base) = (
            pending.clone(),
            failed.clone(),
            p.on_saved.clone(),
            p.reference.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let edit = DatasetEdit {
                base: base.clone(),
                ..(*pending).clone()
            };
            let (pending, failed, on_saved) = (pending.clone(), failed.clone(), on_saved.clone());
            yew::platform::spawn_local(async move {
                match ipc::call(cmd::DatasetsEdit { edit }).await {
                    Ok(i) => {
                        let v = &i.version;
                        pending.set(DatasetEdit::default());
                        failed.set(None);
                        // The page moves to the new version (a new `Items`), which says so.
                        on_saved.emit((
                            format!("{}@{}", v.dataset, v.hash),
                            format!(
                                "Saved {} items as version {} of {}",
                                v.items,
                                &v.hash[..12],
                                v.dataset
                            ),
                        ));
                    }
                    // The edits stay, so a bad line can be fixed.
                    Err(e) => failed.set(Some(e)),
                }
            });
        })
    };
    let discard = {
        let (pending, editing) = (pending.clone(), editing.clone());
        Callback::from(move |_: MouseEvent| {
            pending.set(DatasetEdit::default());
            editing.set(None);
        })
    };
    let blank = {
        let vars: serde_json::Map<String, serde_json::Value> = v
            .variables
            .iter()
            .map(|n| (n.clone(), serde_json::Value::from("")))
            .collect();
        let mut o = vars;
        o.insert("expected".into(), "".into());
        serde_json::Value::Object(o).to_string()
    };
    let e = &*pending;
    let changes = e.set.len() + e.delete.len() + e.add.len();
    html! {
        <section class="panel" id="ds-items">
            <div class="row">
                <h2>{ format!("{} · {} · items {}–{} of {}", v.dataset, &v.hash[..12], offset + 1, offset + items.len() as u64, v.items) }</h2>
                <span class="spacer" />
                <button class="small" id="ds-prev" disabled={offset == 0} onclick={Callback::from(move |_: MouseEvent| prev.emit(offset.saturating_sub(PAGE)))}>{ "← Previous" }</button>
                <button class="small" id="ds-next" disabled={offset + PAGE >= v.items} onclick={Callback::from(move |_: MouseEvent| next.emit(offset + PAGE))}>{ "Next →" }</button>
            </div>
            <table class="grid compact">
                <thead><tr><th class="num">{ "#" }</th>{ for v.variables.iter().map(|n| html! { <th class="mono">{ n.clone() }</th> }) }<th>{ "expected" }</th><th>{ "metadata" }</th><th></th></tr></thead>
                <tbody>
                    { for items.iter().enumerate().map(|(i, item)| {
                        let idx = offset + i as u64;
                        let deleted = e.delete.contains(&idx);
                        let changed = e.set.get(&idx);
                        let text = changed.cloned().unwrap_or_else(|| serde_json::to_string(item).unwrap_or_default());
                        let class = if deleted { "deleted" } else if changed.is_some() { "changed" } else { "" };
                        html! {
                        <tr key={idx} class={class}>
                            <td class="num">{ idx }</td>
                            if let Some(t) = changed {
                                <td colspan={(v.variables.len() + 2).to_string()} class="mono small">{ gist(t, 160) }</td>
                            } else {
                                { for v.variables.iter().map(|n| html! { <td>{ gist(item.vars.get(n).map_or("", String::as_str), 50) }</td> }) }
                                <td>{ gist(&item.expected.join(" | "), 60) }</td>
                                <td class="mono small">{ if item.metadata.is_empty() { String::new() } else { serde_json::to_string(&item.metadata).unwrap_or_default() } }</td>
                            }
                            <td class="actions">
                                <button class="small ghost" id={format!("ds-edit-{idx}")} disabled={deleted} onclick={edit(Some(idx), text)}>{ "Edit" }</button>
                                <button class="small ghost" id={format!("ds-del-{idx}")} onclick={toggle_delete(idx)}>{ if deleted { "Restore" } else { "Delete" } }</button>
                            </td>
                        </tr>
                    }}) }
                    { for e.add.iter().enumerate().map(|(i, t)| html! {
                        <tr class="added"><td class="num">{ format!("+{}", i + 1) }</td><td colspan={(v.variables.len() + 3).to_string()} class="mono small">{ gist(t, 160) }</td></tr>
                    }) }
                </tbody>
            </table>
            if let Some((idx, text)) = &*editing {
                <div class="editor">
                    <label>{ match idx { Some(i) => format!("Item {i}, as one JSONL line"), None => "New item, as one JSONL line".to_owned() } }
                        <textarea id="ds-item-text" rows="3" class="mono" value={text.clone()} oninput={{ let (ed, idx) = (editing.clone(), *idx); on_text(move |t| ed.set(Some((idx, t)))) }} />
                    </label>
                    <div class="row">
                        <button class="primary small" id="ds-item-keep" onclick={keep}>{ "Keep" }</button>
                        <button class="small" onclick={{ let ed = editing.clone(); Callback::from(move |_: MouseEvent| ed.set(None)) }}>{ "Cancel" }</button>
                    </div>
                </div>
            }
            <div class="row">
                <button class="small" id="ds-add" title={refused_editor.clone()} onclick={edit(None, blank)} disabled={refused_editor.is_some()}>{ "Add item" }</button>
                if changes > 0 {
                    <span class="small" id="ds-pending">{ format!("{} changed · {} deleted · {} added", e.set.len(), e.delete.len(), e.add.len()) }</span>
                    <button class="primary small" id="ds-save" title={refused_editor.clone()} onclick={save} disabled={refused_editor.is_some()}>{ "Save as new version" }</button>
                    <button class="small" id="ds-discard" onclick={discard}>{ "Discard" }</button>
                }
            </div>
            if let Some(e) = &*failed {
                <ErrorBox error={e.clone()} id="ds-edit-error" />
            }
            <Export reference={format!("{}@{}", v.dataset, v.hash)} />
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ExportProps {
    reference: String,
}

/// Writes the version to a CSV or JSONL file (by default in the downloads folder).
#[function_component]
fn Export(p: &ExportProps) -> Html {
    let kind = use_state(|| "jsonl".to_owned());
    let path = use_state(String::new);
    let done = use_state(|| None::<Result<String, CallError>>);
    let export = {
        let (kind, path, done, reference) = (
            kind.clone(),
            path.clone(),
            done.clone(),
            p.reference.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let (kind, path, done, reference) = (
                (*kind).clone(),
                (*path).clone(),
                done.clone(),
                reference.clone(),
            );
            yew::platform::spawn_local(async move {
                let r = match milc_api::export::Format::parse(&kind) {
                    Some(kind) => ipc::call(cmd::DatasetsExport {
                        reference,
                        kind,
                        path,
                    })
                    .await
                    .map(|x| format!("Wrote {} items to {}", x.records, x.path)),
                    None => Err(CallError::config(format!("'{kind}' is not a file format"))),
                };
                done.set(Some(r));
            });
        })
    };
    html! {
        <div class="row export">
            <label class="inline">{ "Export as" }
                <select id="ds-export-format" onchange={{ let k = kind.clone(); on_select(move |v| k.set(v)) }}>
                    <option value="jsonl" selected={*kind == "jsonl"}>{ "JSONL" }</option>
                    <option value="csv" selected={*kind == "csv"}>{ "CSV" }</option>
                </select>
            </label>
            <input id="ds-export-path" class="grow" placeholder="File (empty: the downloads folder)" value={(*path).clone()} oninput={{ let pth = path.clone(); on_text(move |v| pth.set(v)) }} />
            <button class="small" id="ds-export" onclick={export}>{ "Export" }</button>
            { match &*done {
                Some(Ok(t)) => html! { <span class="note ok small" id="ds-exported">{ t.clone() }</span> },
                Some(Err(e)) => html! { <ErrorBox error={e.clone()} id="ds-export-error" /> },
                None => html! {},
            } }
        </div>
    }
}
