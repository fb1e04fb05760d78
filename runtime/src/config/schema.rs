//! The shape of the settings tree, read from the types themselves: a probe runs each type's
//! `Deserialize` and records what it asks for (a struct's fields, an option, a list, a map, an
//! enum's variants, a number's range), so code that walks the settings (the environment overlay,
//! the tests, the docs check) never lists them by hand.

use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// What one setting holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `true` or `false`.
    Bool,
    /// An integer from `min` to `max`.
    Int {
        /// The smallest value.
        min: i128,
        /// The largest value.
        max: i128,
    },
    /// A floating-point number.
    Float,
    /// A string (paths included).
    Str,
    /// One of these names.
    Enum(&'static [&'static str]),
    /// The inner kind, or nothing.
    Option(Box<Kind>),
    /// A list of the inner kind.
    List(Box<Kind>),
    /// Names to values of the inner kind.
    Map(Box<Kind>),
    /// A section: named settings.
    Table(Vec<(&'static str, Kind)>),
}

/// One setting: its path in the tree (`["store", "redis", "urls"]`) and kind (never a table).
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// Section names, then the key.
    pub path: Vec<&'static str>,
    /// What it holds.
    pub kind: Kind,
}

impl Leaf {
    /// The dotted path, e.g. `store.redis.urls`.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// The shape of `T`, or why it could not be read (a type the probe does not support).
pub fn kind_of<'de, T: Deserialize<'de>>() -> Result<Kind, String> {
    let mut slot = None;
    T::deserialize(Probe(&mut slot)).map_err(|e| e.to_string())?;
    slot.ok_or_else(|| "the type asked for nothing".to_string())
}

/// Every setting below `kind`, depth first in declaration order.
pub fn leaves(kind: &Kind) -> Vec<Leaf> {
    fn walk(kind: &Kind, path: &mut Vec<&'static str>, out: &mut Vec<Leaf>) {
        match kind {
            Kind::Table(fields) => {
                for (name, kind) in fields {
                    path.push(name);
                    walk(kind, path, out);
                    path.pop();
                }
            }
            other => out.push(Leaf {
                path: path.clone(),
                kind: other.clone(),
            }),
        }
    }
    let mut out = Vec::new();
    walk(kind, &mut Vec::new(), &mut out);
    out
}

/// A deserializer that hands out placeholder values and records the kind asked for.
struct Probe<'a>(&'a mut Option<Kind>);

impl Probe<'_> {
    fn int<'de, V: Visitor<'de>>(
        self,
        min: i128,
        max: i128,
        visitor: V,
    ) -> Result<V::Value, Error> {
        *self.0 = Some(Kind::Int { min, max });
        if min < 0 {
            visitor.visit_i64(0)
        } else {
            visitor.visit_u64(0)
        }
    }
}

macro_rules! ints {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.int(i128::from(<$ty>::MIN), i128::from(<$ty>::MAX), visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::custom(
            "a setting of no fixed type (untagged, flattened or free-form values are not supported)",
        ))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.0 = Some(Kind::Bool);
        visitor.visit_bool(false)
    }

    ints!(deserialize_i8: i8, deserialize_i16: i16, deserialize_i32: i32, deserialize_i64: i64,
          deserialize_u8: u8, deserialize_u16: u16, deserialize_u32: u32, deserialize_u64: u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.0 = Some(Kind::Float);
        visitor.visit_f32(0.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.0 = Some(Kind::Float);
        visitor.visit_f64(0.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.0 = Some(Kind::Str);
        visitor.visit_char('x')
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        *self.0 = Some(Kind::Str);
        visitor.visit_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("bytes settings are not supported"))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut inner = None;
        let value = visitor.visit_some(Probe(&mut inner))?;
        *self.0 = Some(Kind::Option(Box::new(known(inner)?)));
        Ok(value)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("unit settings are not supported"))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut inner = None;
        let value = visitor.visit_seq(One {
            slot: &mut inner,
            done: false,
        })?;
        *self.0 = Some(Kind::List(Box::new(known(inner)?)));
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom("tuple settings are not supported"))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut inner = None;
        let value = visitor.visit_map(One {
            slot: &mut inner,
            done: false,
        })?;
        *self.0 = Some(Kind::Map(Box::new(known(inner)?)));
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut kinds = Vec::with_capacity(fields.len());
        let value = visitor.visit_map(Fields {
            fields,
            next: 0,
            kinds: &mut kinds,
        })?;
        *self.0 = Some(Kind::Table(kinds));
        Ok(value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let first = variants
            .first()
            .ok_or_else(|| de::Error::custom("an enum without variants"))?;
        *self.0 = Some(Kind::Enum(variants));
        let access: StrDeserializer<'_, Error> = first.into_deserializer();
        visitor.visit_enum(access)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The recorded kind, or an error when the type asked for none.
fn known(kind: Option<Kind>) -> Result<Kind, Error> {
    kind.ok_or_else(|| de::Error::custom("a setting whose type asked for nothing"))
}

/// A list with one probed element, or a map with one probed entry (its key named `name`).
struct One<'a> {
    slot: &'a mut Option<Kind>,
    done: bool,
}

impl<'de> SeqAccess<'de> for One<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if std::mem::replace(&mut self.done, true) {
            return Ok(None);
        }
        seed.deserialize(Probe(self.slot)).map(Some)
    }
}

impl<'de> MapAccess<'de> for One<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.done {
            return Ok(None);
        }
        let key: StrDeserializer<'_, Error> = "name".into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.done = true;
        seed.deserialize(Probe(self.slot))
    }
}

/// A struct's fields, each probed.
struct Fields<'a> {
    fields: &'static [&'static str],
    next: usize,
    kinds: &'a mut Vec<(&'static str, Kind)>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(name) = self.fields.get(self.next) else {
            return Ok(None);
        };
        let key: StrDeserializer<'_, Error> = name.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let name = self.fields.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        let mut slot = None;
        let value = seed.deserialize(Probe(&mut slot))?;
        self.kinds.push((name, known(slot)?));
        Ok(value)
    }
}
