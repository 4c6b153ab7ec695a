//! Every figure of a finished call, as a compact row under the answer.

use milc_api::{ChatResult, UsageSource};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub result: ChatResult,
    /// Put before each figure's id, when several calls are shown at once.
    #[prop_or_default]
    pub prefix: AttrValue,
}

#[function_component]
pub fn Figures(p: &Props) -> Html {
    let r = &p.result;
    let u = &r.usage;
    let fig = |id: &str, label: &str, value: String| {
        html! {
            <div class="figure" id={format!("{}{id}", p.prefix)}>
                <span class="label">{ label.to_owned() }</span>
                <span class="value">{ value }</span>
            </div>
        }
    };
    let mut tokens = format!("{} → {}", u.prompt_tokens, u.completion_tokens);
    if u.cached_tokens > 0 {
        tokens.push_str(&format!(" ({} cached)", u.cached_tokens));
    }
    if u.reasoning_tokens > 0 {
        tokens.push_str(&format!(" ({} reasoning)", u.reasoning_tokens));
    }
    let (usage_class, usage_text) = match u.source {
        UsageSource::Reported => ("badge ok", "reported"),
        UsageSource::Estimated => ("badge warn", "estimated"),
    };
    html! {
        <div class="figures">
            { fig("fig-ttft", "TTFT", r.ttft_ms.map(|t| format!("{t} ms")).unwrap_or_else(|| "—".into())) }
            { fig("fig-latency", "Latency", format!("{} ms", r.latency_ms)) }
            { fig("fig-tokens", "Tokens in → out", tokens) }
            { fig("fig-tps", "Tokens/s", r.tokens_per_sec.map(|t| format!("{t:.1}")).unwrap_or_else(|| "—".into())) }
            { fig("fig-cost", "Cost", format!("${}", r.cost.usd())) }
            <div class="figure" id={format!("{}fig-usage", p.prefix)}>
                <span class="label">{ "Usage" }</span>
                <span class={usage_class} title="reported by the server, or estimated locally when it sent none">{ usage_text }</span>
            </div>
            if r.attempts > 1 { { fig("fig-attempts", "Attempts", r.attempts.to_string()) } }
        </div>
    }
}
