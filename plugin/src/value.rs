//! [`Value`] and [`Callback`]: the Rust side of [`FfiValue`] and [`FfiCallback`].

use std::ffi::c_void;
use std::fmt;
use std::sync::Arc;

use autoawait_core::RunError;

use crate::abi::{FfiBuf, FfiCallback, FfiResult, FfiValue};

/// A value passed to or returned by a plugin function.
///
/// What a scripting front end can pass: nil, booleans, numbers, strings, opaque
/// handles to plugin objects, and callbacks.
///
/// # Examples
///
/// ```
/// use autoawait_plugin::Value;
///
/// assert_eq!(Value::from(1.5).as_f64(), Some(1.5));
/// assert_eq!(Value::from(2).as_f64(), Some(2.0));
/// assert_eq!(Value::from("hi").as_str(), Some("hi"));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Value {
    /// Nothing (Lua `nil`).
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// An opaque handle to an object of the plugin (a deferred, say).
    Handle(u64),
    /// A function the plugin may call.
    Callback(Callback),
}

impl Value {
    /// The number inside, if this is an `Int` or a `Float`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The string inside, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages (`"number"`, `"string"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Handle(_) => "handle",
            Value::Callback(_) => "function",
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Handle(a), Value::Handle(b)) => a == b,
            (Value::Callback(a), Value::Callback(b)) => Arc::ptr_eq(&a.0, &b.0),
            _ => false,
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<Callback> for Value {
    fn from(v: Callback) -> Self {
        Value::Callback(v)
    }
}

impl From<Value> for FfiValue {
    fn from(v: Value) -> Self {
        match v {
            Value::Nil => FfiValue::Nil,
            Value::Bool(b) => FfiValue::Bool(u8::from(b)),
            Value::Int(i) => FfiValue::Int(i),
            Value::Float(f) => FfiValue::Float(f),
            Value::Str(s) => FfiValue::Str(FfiBuf::from(s)),
            Value::Handle(h) => FfiValue::Handle(h),
            Value::Callback(c) => FfiValue::Callback(c.into_ffi()),
        }
    }
}

impl From<FfiValue> for Value {
    fn from(v: FfiValue) -> Self {
        match v {
            FfiValue::Nil => Value::Nil,
            FfiValue::Bool(b) => Value::Bool(b != 0),
            FfiValue::Int(i) => Value::Int(i),
            FfiValue::Float(f) => Value::Float(f),
            FfiValue::Str(s) => Value::Str(s.into_string()),
            FfiValue::Handle(h) => Value::Handle(h),
            FfiValue::Callback(c) => Value::Callback(Callback(Arc::new(c))),
        }
    }
}

type CallbackFn = Box<dyn Fn() -> Result<Value, RunError> + Send + Sync>;

/// A function handed to a plugin (the `fn` of `twisted.call_later(s, fn)`).
///
/// Cheap to clone. Calling it runs the closure in the image that made it, on the
/// calling thread; a panic in it becomes [`RunError::Panicked`].
///
/// # Examples
///
/// ```
/// use autoawait_plugin::{Callback, Value};
///
/// let cb = Callback::new(|| Ok(Value::from(7)));
/// assert_eq!(cb.call().unwrap(), Value::Int(7));
/// ```
#[derive(Clone)]
pub struct Callback(Arc<FfiCallback>);

/// # Safety
///
/// `ctx` is the `CallbackFn` boxed by `Callback::new` in this image, not yet dropped.
unsafe extern "C" fn call_boxed(ctx: *const c_void) -> FfiResult<FfiValue> {
    // SAFETY: as the function's contract says; it lives until `drop_boxed`, which
    // runs after the last call.
    let f = unsafe { &*ctx.cast::<CallbackFn>() };
    match crate::caught(f) {
        Ok(result) => FfiResult::from_result(result.map(FfiValue::from)),
        Err(payload) => FfiResult::from_result(Err(RunError::from_panic(payload))),
    }
}

/// # Safety
///
/// `ctx` came from `Box::into_raw` in `Callback::new` and is freed once.
unsafe extern "C" fn drop_boxed(ctx: *mut c_void) {
    // SAFETY: as the function's contract says.
    let f = unsafe { Box::from_raw(ctx.cast::<CallbackFn>()) };
    // A panicking destructor must not unwind into the other image.
    let _ = crate::caught(move || drop(f));
}

impl Callback {
    /// A callback running `f`.
    pub fn new(f: impl Fn() -> Result<Value, RunError> + Send + Sync + 'static) -> Self {
        let boxed: Box<CallbackFn> = Box::new(Box::new(f));
        Callback(Arc::new(FfiCallback {
            ctx: Box::into_raw(boxed).cast(),
            call: Some(call_boxed),
            drop: Some(drop_boxed),
        }))
    }

    /// Calls it.
    ///
    /// # Errors
    ///
    /// The callback's error; [`RunError::Panicked`] if it panicked.
    pub fn call(&self) -> Result<Value, RunError> {
        let Some(call) = self.0.call else {
            return Err(RunError::Failed {
                message: "the callback has no function to call (a broken plugin)".into(),
            });
        };
        // SAFETY: `call` came with `ctx` from the image that made the callback, which
        // keeps `ctx` alive until the callback is dropped.
        unsafe { call(self.0.ctx) }.into_result().map(Value::from)
    }

    fn into_ffi(self) -> FfiCallback {
        match Arc::try_unwrap(self.0) {
            Ok(ffi) => ffi,
            // Shared: hand over a forwarding callback that keeps this one alive.
            Err(shared) => {
                let this = Callback(shared);
                match Arc::try_unwrap(Callback::new(move || this.call()).0) {
                    Ok(ffi) => ffi,
                    Err(_) => unreachable!("a new callback is not shared"),
                }
            }
        }
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback").finish_non_exhaustive()
    }
}
