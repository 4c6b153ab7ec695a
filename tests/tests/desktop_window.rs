//! The desktop window comes back where, and as big as, the user left it — also when the app was
//! ended by a signal (logout, `kill`) rather than the close button. The real window under Xvfb,
//! moved and resized from outside with xdotool as a window manager would.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use milc_e2e::{desktop_env, wait_ready, workspace_bin};

fn launch(home: &Path) -> Child {
    let ready = home.join("ready");
    let _ = std::fs::remove_file(&ready);
    let start = Instant::now();
    let child = Command::new(workspace_bin("milc-desktop"))
        .envs(desktop_env(home))
        .env("MILC_READY_FILE", &ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&ready, start);
    child
}

fn xdotool(args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .output()
        .expect("xdotool is installed (scripts/setup)");
    assert!(
        out.status.success(),
        "xdotool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn main_window() -> String {
    let ids = xdotool(&[
        "search",
        "--sync",
        "--onlyvisible",
        "--name",
        "^MILC Console$",
    ]);
    ids.lines()
        .next()
        .expect("the main window is on screen")
        .to_owned()
}

/// (x, y, width, height) as the X server sees the window.
fn geometry(window: &str) -> (i32, i32, u32, u32) {
    let shell = xdotool(&["getwindowgeometry", "--shell", window]);
    let get = |key: &str| -> i64 {
        let line = shell
            .lines()
            .find(|l| l.starts_with(&format!("{key}=")))
            .unwrap();
        line[key.len() + 1..].parse().unwrap()
    };
    (
        get("X") as i32,
        get("Y") as i32,
        get("WIDTH") as u32,
        get("HEIGHT") as u32,
    )
}

fn terminate(mut app: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &app.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = app.try_wait().unwrap() {
            assert!(
                status.success(),
                "a signal ends the app cleanly, not by dying: {status}"
            );
            return;
        }
        assert!(Instant::now() < deadline, "the app ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_window_comes_back_where_and_as_big_as_it_was_left() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "needs an X display: run scripts/test (Xvfb)"
    );
    let home = tempfile::tempdir().unwrap();

    let app = launch(home.path());
    let window = main_window();
    let first = geometry(&window);
    let wanted = (47, 33, 1011, 707);
    assert_ne!(first, wanted);
    xdotool(&["windowsize", &window, "1011", "707"]);
    xdotool(&["windowmove", &window, "47", "33"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while geometry(&window) != wanted {
        assert!(
            Instant::now() < deadline,
            "the window did not take {wanted:?}: {:?}",
            geometry(&window)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    terminate(app);

    let app = launch(home.path());
    let restored = geometry(&main_window());
    terminate(app);
    assert_eq!(restored, wanted, "first start was {first:?}");
}
