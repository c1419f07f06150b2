//! Failure injection for the store's write path, compiled in only with the
//! `failpoints` cargo feature (release builds leave it out, and `hit` is then
//! an empty inline function).
//!
//! A point is `<file kind>.<step>`: `checkpoint.create`, `.write`, `.fsync`,
//! `.rename`, `.dirsync` (the crash-safe recipe), and `metadata.write`,
//! `index.lock`, `index.write` (the caches, rewritten in place).
//! Configure with `MASTER_FAILPOINTS="checkpoint.fsync=EIO,index.write=ENOSPC*2"`
//! (read at first use) or `configure`: each named point fails with that errno,
//! every time or the given number of times.

#[cfg(feature = "failpoints")]
mod active {
    use std::io;
    use std::sync::{Mutex, OnceLock};

    struct Point {
        kind: String,
        step: String,
        errno: i32,
        remaining: Option<u32>,
    }

    fn points() -> &'static Mutex<Vec<Point>> {
        static POINTS: OnceLock<Mutex<Vec<Point>>> = OnceLock::new();
        POINTS.get_or_init(|| {
            let spec = std::env::var("MASTER_FAILPOINTS").unwrap_or_default();
            Mutex::new(parse(&spec).unwrap_or_default())
        })
    }

    fn errno(name: &str) -> Option<i32> {
        Some(match name {
            "ENOSPC" => libc::ENOSPC,
            "EIO" => libc::EIO,
            "EACCES" => libc::EACCES,
            "EDQUOT" => libc::EDQUOT,
            "EROFS" => libc::EROFS,
            _ => return None,
        })
    }

    fn parse(spec: &str) -> Result<Vec<Point>, String> {
        let mut points = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (point, error) = item
                .split_once('=')
                .ok_or(format!("{item:?}: expected point=ERRNO"))?;
            let (error, times) = match error.split_once('*') {
                Some((e, n)) => (
                    e,
                    Some(n.parse().map_err(|_| format!("{item:?}: bad count"))?),
                ),
                None => (error, None),
            };
            let (kind, step) = point
                .split_once('.')
                .ok_or(format!("{item:?}: expected kind.step"))?;
            points.push(Point {
                kind: kind.into(),
                step: step.into(),
                errno: errno(error).ok_or(format!("{item:?}: unknown errno {error}"))?,
                remaining: times,
            });
        }
        Ok(points)
    }

    pub(crate) fn configure(spec: &str) -> Result<(), String> {
        let parsed = parse(spec)?;
        *points().lock().unwrap_or_else(|p| p.into_inner()) = parsed;
        Ok(())
    }

    pub(crate) fn hit(kind: &str, step: &str) -> io::Result<()> {
        let mut points = points().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(point) = points
            .iter_mut()
            .find(|p| p.kind == kind && p.step == step && p.remaining != Some(0))
        {
            if let Some(n) = point.remaining.as_mut() {
                *n -= 1;
            }
            return Err(io::Error::from_raw_os_error(point.errno));
        }
        Ok(())
    }
}

#[cfg(feature = "failpoints")]
pub(crate) use active::{configure, hit};

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_kind: &str, _step: &str) -> std::io::Result<()> {
    Ok(())
}
