//! MILC Console's desktop shell: state set up once, Tauri commands that are a few lines each over
//! `milc_core::Console`, errors crossing to the UI as `milc_api::CallError` (`{kind, message,
//! status}`), streaming through a Tauri channel, and cancellable jobs by key (`jobs`).

mod commands;
mod jobs;
mod store;

use std::path::PathBuf;
use std::time::Instant;

use milc_core::Console;
use tauri::{Manager, Runtime};

pub use commands::{handler, AppState};

/// Starts the desktop console. Logs go to daily files in the OS log directory (`MILC_LOG_DIR`
/// overrides); the store is the one `store::open` picks (`MILC_DB`, the team workspace chosen
/// in the window, or the local file).
pub fn run() {
    let started = Instant::now();
    // WebKitGTK's DMA-BUF renderer halves the web process's memory when off (measured in
    // BENCHMARKS.md) and is the known cause of blank windows on some GPU drivers. Set before any
    // thread starts; a value the user set wins.
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
    let log_dir = std::env::var_os("MILC_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(milc_core::default_log_dir);
    let _log_guard = init_logging(&log_dir);
    tracing::info!(logs = %log_dir.display(), "starting");

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .plugin(tauri_plugin_notification::init())
        .setup(move |app| {
            let (console, warning) = tauri::async_runtime::block_on(store::open())
                .map_err(|e| format!("cannot open the console's store: {e}"))?;
            notify_alerts(app.handle().clone(), &console);
            // `MILC_EMPTY_PAGE`: the window shows an empty page instead of the console, so the
            // desktop bench can measure WebKitGTK's own memory floor in this very shell.
            if std::env::var_os("MILC_EMPTY_PAGE").is_some() {
                if let Some(w) = app.get_webview_window("main") {
                    w.navigate("about:blank".parse().expect("a URL"))?;
                }
            }
            let state = AppState::new(console, started, warning);
            run_due_while_open(state.shared_console());
            app.manage(state);
            exit_on_signal(app.handle().clone());
            Ok(())
        });
    let app = match with_commands(app).build(tauri::generate_context!()) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "the desktop console stopped");
            eprintln!("MILC Console could not run: {e}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let tauri::RunEvent::Exit = event {
            // The last second's spans go to the collector before the process ends (5 s at most).
            if let Some(state) = handle.try_state::<AppState>() {
                tauri::async_runtime::block_on(state.console().otel_flush());
            }
        }
    });
}

/// Shows each alert as it fires as a desktop notification (budgets crossed, cost spikes, error
/// rates); the window lists them too.
fn notify_alerts<R: Runtime>(app: tauri::AppHandle<R>, console: &Console) {
    use tauri_plugin_notification::NotificationExt;
    let mut fired = console.subscribe_alerts();
    tauri::async_runtime::spawn(async move {
        loop {
            let alert = match fired.recv().await {
                Ok(a) => a,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "alerts fired faster than they could be shown");
                    continue;
                }
                Err(_) => return,
            };
            let shown = app
                .notification()
                .builder()
                .title(format!(
                    "MILC Console: {}",
                    alert.kind.as_str().replace('_', " ")
                ))
                .body(&alert.message)
                .show();
            match shown {
                Ok(()) => tracing::info!(alert = alert.id, "alert shown as a notification"),
                Err(e) => {
                    tracing::warn!(alert = alert.id, error = %e, "cannot show a notification")
                }
            }
        }
    });
}

/// While the window is open, the scheduled evaluations that fall due are run and the drift
/// watches checked, once a minute (headless, `milc schedule run-due` does the same from cron).
/// Drift alerts reach the notifications like every other alert.
fn run_due_while_open(console: std::sync::Arc<Console>) {
    tauri::async_runtime::spawn(async move {
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        // The first check a minute after start, not during it: start-up stays the window's.
        tick.tick().await;
        loop {
            tick.tick().await;
            match console.run_due(&|_, _| {}, &cancel).await {
                Ok(r) => {
                    for x in &r.runs {
                        match &x.error {
                            None => {
                                tracing::info!(schedule = %x.schedule, "scheduled evaluation ran")
                            }
                            Some(e) => {
                                tracing::warn!(schedule = %x.schedule, error = %e, "scheduled evaluation could not run")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot run what is due"),
            }
        }
    });
}

/// SIGTERM (logout, `kill`, a service manager) and SIGINT end the app the way closing the window
/// does, so the exit hooks run: the window's size and position are saved, the logs flushed.
fn exit_on_signal<R: Runtime>(app: tauri::AppHandle<R>) {
    #[cfg(unix)]
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot listen for termination signals");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("exiting on a termination signal");
        app.exit(0);
    });
}

/// Registers the app's commands: the same list for the real window and the tests' mock runtime.
pub fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(handler())
}

fn init_logging(dir: &std::path::Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MILC_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tao=warn,wry=warn"));
    let appender = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            tracing_appender::rolling::Builder::new()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("milc-desktop")
                .filename_suffix("log")
                .max_log_files(14)
                .build(dir)
                .map_err(|e| e.to_string())
        });
    match appender {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(writer)
                .init();
            Some(guard)
        }
        Err(e) => {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init();
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write log files; logging to stderr");
            None
        }
    }
}
