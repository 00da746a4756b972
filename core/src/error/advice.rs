//! [`Advice`]: what would work instead, as data.

use std::borrow::Cow;
use std::fmt;

/// What would work instead of what failed: runners that would, and other ways out.
///
/// Errors carry advice as data so that each front end can say it in its own words:
/// `Display` says "use a re-entrant runner: `tokio-nested`" to a Rust caller, and
/// the shell says "select a re-entrant runner: `%autoawait tokio-nested`". One
/// pointer wide; no advice allocates nothing.
///
/// # Examples
///
/// ```
/// use autoawait_core::Advice;
///
/// let advice = Advice::runners("a re-entrant runner", ["tokio-nested", "smol-nested"])
///     .or("await the future, or spawn it");
/// assert_eq!(
///     advice.to_string(),
///     "await the future, or spawn it; or use a re-entrant runner: \
///      `tokio-nested` or `smol-nested`"
/// );
/// assert_eq!(advice.runner_names(), ["tokio-nested", "smol-nested"]);
/// assert!(Advice::default().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Advice(Option<Box<Inner>>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Inner {
    kind: Cow<'static, str>,
    runners: Vec<Cow<'static, str>>,
    otherwise: Cow<'static, str>,
}

impl Advice {
    /// Advice naming runners that would work; `kind` is what they have in common,
    /// in a few words (`"a re-entrant runner"`).
    pub fn runners<I, S>(kind: impl Into<Cow<'static, str>>, runners: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Cow<'static, str>>,
    {
        Advice(Some(Box::new(Inner {
            kind: kind.into(),
            runners: runners.into_iter().map(Into::into).collect(),
            otherwise: Cow::Borrowed(""),
        })))
    }

    /// Advice in plain words only.
    pub fn text(otherwise: impl Into<Cow<'static, str>>) -> Self {
        Advice::default().or(otherwise)
    }

    /// The same advice with another way out, in plain words.
    pub fn or(mut self, otherwise: impl Into<Cow<'static, str>>) -> Self {
        self.inner().otherwise = otherwise.into();
        self
    }

    /// The same advice without runner `name` (the one that refused cannot be the way out).
    pub fn without(mut self, name: &str) -> Self {
        if let Some(inner) = &mut self.0 {
            inner.runners.retain(|r| !r.eq_ignore_ascii_case(name));
        }
        self
    }

    fn inner(&mut self) -> &mut Inner {
        self.0.get_or_insert_with(Box::default)
    }

    /// What the runners have in common, in a few words (may be empty).
    pub fn kind(&self) -> &str {
        self.0.as_ref().map_or("", |i| &i.kind)
    }

    /// Runners that would work, best first (may be empty).
    pub fn runner_names(&self) -> Vec<&str> {
        self.0
            .as_ref()
            .map(|i| i.runners.iter().map(|r| &**r).collect())
            .unwrap_or_default()
    }

    /// Another way out, in plain words (may be empty).
    pub fn otherwise(&self) -> &str {
        self.0.as_ref().map_or("", |i| &i.otherwise)
    }

    /// `true` if there is nothing to advise.
    pub fn is_empty(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|i| i.runners.is_empty() && i.otherwise.is_empty())
    }

    /// Writes the advice, naming each runner with `name` (`` `tokio` `` for library
    /// callers, `` `%autoawait tokio` `` in the shell): "OTHERWISE; or VERB KIND: A or B".
    ///
    /// # Errors
    ///
    /// As the formatter reports.
    pub fn write_with(
        &self,
        f: &mut dyn fmt::Write,
        verb: &str,
        name: &dyn Fn(&str) -> String,
    ) -> fmt::Result {
        let Some(inner) = &self.0 else {
            return Ok(());
        };
        f.write_str(&inner.otherwise)?;
        if inner.runners.is_empty() {
            return Ok(());
        }
        if !inner.otherwise.is_empty() {
            f.write_str("; or ")?;
        }
        write!(f, "{verb} {}", inner.kind)?;
        for (i, runner) in inner.runners.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { " or " })?;
            f.write_str(&name(runner))?;
        }
        Ok(())
    }
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_with(f, "use", &|r| format!("`{r}`"))
    }
}
