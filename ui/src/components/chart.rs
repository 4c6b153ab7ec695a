//! Charts drawn with plotters on a canvas: stacked bars (one bar per time bucket, one colour per
//! series) or lines. A click on a bar names its bucket and series. After each draw the canvas
//! carries `data-bars` (each bar's pixel box, bucket and series) so the bars can be found by
//! tools and tests as a user finds them by eye.

use std::cell::RefCell;
use std::rc::Rc;

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use web_sys::HtmlCanvasElement;
use yew::prelude::*;

/// Series colours, readable on the light and the dark theme.
pub const PALETTE: [(u8, u8, u8); 8] = [
    (118, 185, 0),
    (52, 120, 220),
    (230, 140, 30),
    (160, 90, 200),
    (30, 170, 170),
    (220, 70, 90),
    (140, 140, 60),
    (120, 120, 120),
];

pub fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

pub fn css_colour(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("rgb({r}, {g}, {b})")
}

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    Stacked,
    Lines,
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub id: AttrValue,
    pub kind: Kind,
    /// One label per bucket.
    pub labels: Vec<String>,
    /// (name, one value per bucket).
    pub series: Vec<(String, Vec<f64>)>,
    /// How the y axis writes a value.
    pub unit: AttrValue,
    #[prop_or_default]
    pub on_bar: Option<Callback<(usize, usize)>>,
    #[prop_or(180)]
    pub height: u32,
}

const Y_LABELS: usize = 5;

/// Decimals a tick label needs so that ticks `step` apart read differently (a latency axis
/// from 0 to 2 ms reads 0.4 ms, 0.8 ms, not 0 ms, 1 ms, 1 ms).
fn decimals(step: f64) -> usize {
    if step >= 1.0 || step <= 0.0 || !step.is_finite() {
        0
    } else {
        (-step.log10()).ceil().clamp(0.0, 6.0) as usize
    }
}

/// A tick label for `v` with the precision ticks `step` apart need.
fn fmt(v: f64, unit: &str, step: f64) -> String {
    match unit {
        "$" => {
            let d = decimals(step).max(2);
            format!("${v:.d$}")
        }
        "%" => {
            let d = decimals(step * 100.0);
            format!("{:.d$}%", v * 100.0)
        }
        "ms" => {
            let d = decimals(step);
            format!("{v:.d$} ms")
        }
        _ if v.abs() >= 10_000.0 && step >= 1000.0 => format!("{:.0}k", v / 1000.0),
        _ => {
            let d = decimals(step);
            format!("{v:.d$}")
        }
    }
}

/// A bar's box in canvas pixels (x0, y0, x1, y1), its bucket and its series.
type Bar = (i32, i32, i32, i32, usize, usize);

/// Draws the chart; returns each bar.
fn draw(canvas: &HtmlCanvasElement, p: &Props) -> Result<Vec<Bar>, String> {
    let width = canvas.client_width().max(200) as u32;
    canvas.set_width(width);
    canvas.set_height(p.height);
    let backend = CanvasBackend::with_canvas_object(canvas.clone()).ok_or("no 2D context")?;
    let root = backend.into_drawing_area();
    root.fill(&TRANSPARENT).map_err(|e| e.to_string())?;
    let n = p.labels.len().max(1);
    let top = match p.kind {
        Kind::Stacked => (0..n)
            .map(|i| {
                p.series
                    .iter()
                    .map(|(_, v)| v.get(i).copied().unwrap_or(0.0))
                    .sum::<f64>()
            })
            .fold(0.0, f64::max),
        Kind::Lines => p
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0, f64::max),
    };
    let top = if top <= 0.0 { 1.0 } else { top * 1.1 };
    let text = RGBColor(138, 148, 163);
    let mut chart = ChartBuilder::on(&root)
        .margin(6)
        .x_label_area_size(20)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)
        .map_err(|e| e.to_string())?;
    let labels = p.labels.clone();
    let unit = p.unit.to_string();
    let every = n.div_ceil(8).max(1);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(138, 148, 163).mix(0.15))
        .bold_line_style(RGBColor(138, 148, 163).mix(0.3))
        .axis_style(text.mix(0.6))
        .x_labels(n + 1)
        .y_labels(Y_LABELS)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor()).abs() < 1e-9 && i.is_multiple_of(every) {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| fmt(*y, &unit, top / Y_LABELS as f64))
        .label_style(("sans-serif", 11).into_font().color(&text))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut bars = Vec::new();
    match p.kind {
        Kind::Stacked => {
            let mut base = vec![0.0; n];
            for (s, (_, values)) in p.series.iter().enumerate() {
                let mut rects = Vec::new();
                for (i, v) in values.iter().enumerate().take(n) {
                    if *v <= 0.0 {
                        continue;
                    }
                    let (x0, x1) = (i as f64 + 0.15, i as f64 + 0.85);
                    let (y0, y1) = (base[i], base[i] + v);
                    base[i] = y1;
                    let (px0, py1) = chart.backend_coord(&(x0, y1));
                    let (px1, py0) = chart.backend_coord(&(x1, y0));
                    bars.push((px0, py1, px1, py0, i, s));
                    rects.push(Rectangle::new([(x0, y0), (x1, y1)], colour(s).filled()));
                }
                chart.draw_series(rects).map_err(|e| e.to_string())?;
            }
        }
        Kind::Lines => {
            for (s, (_, values)) in p.series.iter().enumerate() {
                let points: Vec<(f64, f64)> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64 + 0.5, *v))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), colour(s).stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|pt| Circle::new(pt, 2, colour(s).filled())),
                    )
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(bars)
}

#[function_component]
pub fn Chart(p: &Props) -> Html {
    let canvas = use_node_ref();
    let bars = use_mut_ref(Vec::<Bar>::new);
    let error = use_state(|| None::<String>);
    {
        let (canvas, bars, error) = (canvas.clone(), bars.clone(), error.clone());
        let p = Props {
            id: p.id.clone(),
            kind: p.kind,
            labels: p.labels.clone(),
            series: p.series.clone(),
            unit: p.unit.clone(),
            on_bar: None,
            height: p.height,
        };
        use_effect(move || {
            if let Some(c) = canvas.cast::<HtmlCanvasElement>() {
                match draw(&c, &p) {
                    Ok(drawn) => {
                        let json = serde_json::to_string(&drawn).unwrap_or_default();
                        let _ = c.set_attribute("data-bars", &json);
                        *bars.borrow_mut() = drawn;
                        if error.is_some() {
                            error.set(None);
                        }
                    }
                    Err(e) => {
                        if error.as_deref() != Some(e.as_str()) {
                            error.set(Some(e));
                        }
                    }
                }
            }
        });
    }
    let onclick = {
        let (bars, on_bar): (Rc<RefCell<Vec<_>>>, _) = (bars.clone(), p.on_bar.clone());
        Callback::from(move |e: MouseEvent| {
            let Some(on_bar) = &on_bar else { return };
            let (x, y) = (e.offset_x(), e.offset_y());
            let hit = bars
                .borrow()
                .iter()
                .find(|(x0, y0, x1, y1, ..)| x >= *x0 && x <= *x1 && y >= *y0 && y <= *y1)
                .map(|b| (b.4, b.5));
            if let Some(hit) = hit {
                on_bar.emit(hit);
            }
        })
    };
    html! {
        <div class="chart">
            <canvas id={p.id.clone()} ref={canvas} {onclick}
                class={classes!(p.on_bar.is_some().then_some("clickable"))}
                style={format!("width: 100%; height: {}px", p.height)} />
            if let Some(e) = &*error { <div class="small muted">{ format!("chart: {e}") }</div> }
            if p.series.len() > 1 || p.kind == Kind::Lines {
                <div class="legend small">
                    { for p.series.iter().enumerate().map(|(i, (name, _))| html! {
                        <span class="key"><span class="swatch" style={format!("background: {}", css_colour(i))} />{ name }</span>
                    }) }
                </div>
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ranges_get_the_decimals_their_ticks_need() {
        // A latency axis from 0 to 1.1 ms: ticks 0.22 ms apart.
        let step = 1.1 / Y_LABELS as f64;
        let labels: Vec<String> = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
            .iter()
            .map(|v| fmt(*v, "ms", step))
            .collect();
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(labels, unique, "no label repeats: {labels:?}");
        assert_eq!(labels[1], "0.2 ms");
        assert_eq!(fmt(1200.0, "ms", 300.0), "1200 ms");
        assert_eq!(fmt(0.00012, "$", 0.00005), "$0.00012");
        assert_eq!(fmt(2.5, "$", 1.0), "$2.50");
        assert_eq!(fmt(0.025, "%", 0.002), "2.5%");
        assert_eq!(fmt(0.025, "%", 0.01), "2%");
        assert_eq!(fmt(0.4, "%", 0.2), "40%");
        assert_eq!(fmt(25_000.0, "", 5_000.0), "25k");
        assert_eq!(fmt(3.0, "", 1.0), "3");
    }
}
