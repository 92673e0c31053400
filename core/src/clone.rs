//! Field-by-field `Clone`, with a `clone_from` that reuses the target's allocations.
//!
//! `#[derive(Clone)]` leaves `clone_from` at its default (`*self = source.clone()`), which
//! frees every allocation of the target and makes new ones. A buffer copied again and again
//! into the same place (an adapter's exported copy, the exhaustive explorer's scratch
//! state) should instead copy into what it already holds: each field's own `clone_from`
//! (a `Vec`'s, a `Box`'s, an `Option`'s) does.

/// Implements `Clone` for a struct field by field: `clone` clones each field, `clone_from`
/// calls each field's `clone_from`. Every field must be listed: the struct is destructured
/// without `..`, so a field added later and not listed here fails to compile, rather than
/// being left out of a copy.
macro_rules! clone_field_by_field {
    ($ty:ident { $($field:ident),+ $(,)? }) => {
        impl Clone for $ty {
            fn clone(&self) -> Self {
                let $ty { $($field),+ } = self;
                $ty { $($field: Clone::clone($field)),+ }
            }

            fn clone_from(&mut self, source: &Self) {
                let $ty { $($field),+ } = self;
                $($field.clone_from(&source.$field);)+
            }
        }
    };
}
