//! Rich output: `display(v, ...)`, `display_handle(v)`, `markdown(s)`, `html(s)`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mlua::{Lua, MetaMethod, UserData, UserDataMethods, Value, Variadic};

use super::emit;
use crate::engine::Shared;
use crate::output::{show_value, Output, Rich};

/// A rich value (`markdown(s)`, `html(s)`): shown as its plain text in a terminal.
pub(crate) struct RichValue(pub(crate) Rich);

impl UserData for RichValue {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| Ok(this.0.plain.clone()));
    }
}

/// How `display` shows a value: rich values as they are, others as text.
fn rich_of(v: &Value) -> Rich {
    match v {
        Value::UserData(ud) => match ud.borrow::<RichValue>() {
            Ok(rich) => rich.0.clone(),
            Err(_) => Rich::text(show_value(v)),
        },
        _ => Rich::text(show_value(v)),
    }
}

/// What `display_handle(v)` returns: `handle:update(v)` replaces the value shown,
/// `handle:display(v)` shows it again in the current cell (both update together).
struct DisplayHandle {
    id: String,
    shared: Arc<Shared>,
}

impl UserData for DisplayHandle {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("id", |_, this| Ok(this.id.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("update", |_, this, v: Value| {
            let (id, value) = (this.id.clone(), rich_of(&v));
            emit(&this.shared, Output::UpdateDisplay { id, value });
            Ok(())
        });
        methods.add_method("display", |_, this, v: Value| {
            let (id, value) = (Some(this.id.clone()), rich_of(&v));
            emit(&this.shared, Output::Display { value, id });
            Ok(())
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("<DisplayHandle {}>", this.id))
        });
    }
}

/// Installs `display`, `display_handle`, `markdown` and `html`.
pub(super) fn install(lua: &Lua, shared: &Arc<Shared>) -> mlua::Result<()> {
    let g = lua.globals();
    let s = shared.clone();
    g.set(
        "display",
        lua.create_function(move |_, args: Variadic<Value>| {
            for v in args.iter() {
                let value = rich_of(v);
                emit(&s, Output::Display { value, id: None });
            }
            Ok(())
        })?,
    )?;
    let s = shared.clone();
    g.set(
        "display_handle",
        lua.create_function(move |_, value: Option<Value>| {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let id = format!(
                "autoawait-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            if let Some(v) = value {
                let value = rich_of(&v);
                let id = Some(id.clone());
                emit(&s, Output::Display { value, id });
            }
            Ok(DisplayHandle {
                id,
                shared: s.clone(),
            })
        })?,
    )?;
    g.set(
        "markdown",
        lua.create_function(|_, text: String| Ok(RichValue(Rich::markdown(text))))?,
    )?;
    g.set(
        "html",
        lua.create_function(|_, text: String| Ok(RichValue(Rich::html(text))))?,
    )?;

    Ok(())
}
