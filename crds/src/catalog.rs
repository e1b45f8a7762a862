//! The built-in price catalogue (`crds/catalog/prices.yaml`): prices for well-known models,
//! each with the page it was read from and the date, used when a spec gives none.

use std::{collections::BTreeMap, sync::OnceLock};

use serde::Deserialize;

use crate::{
    common::{Money, MoneyError},
    config::{PriceSource, Pricing},
    provider::{ModelPricing, ProviderType},
};

const BUILTIN: &str = include_str!("../catalog/prices.yaml");

/// Why the catalogue cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogueError {
    /// Not valid YAML for the catalogue format.
    #[error("price catalogue is malformed: {0}")]
    Parse(String),
    /// An entry is wrong.
    #[error("price catalogue entry {provider}/{model}: {why}")]
    Entry {
        /// Provider type of the entry.
        provider: &'static str,
        /// Model of the entry.
        model: String,
        /// What is wrong.
        why: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CatalogueFile {
    version: u32,
    currency: String,
    unit: String,
    models: Vec<CatalogueEntry>,
}

/// One priced model.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogueEntry {
    /// The provider type the price applies to.
    pub provider: ProviderType,
    /// The provider's model id.
    pub model: String,
    /// Prices per million tokens.
    #[serde(flatten)]
    pub pricing: ModelPricing,
    /// A short remark (e.g. which tier).
    #[serde(default)]
    pub note: Option<String>,
    /// The page the price was read from.
    pub source: String,
    /// The date it was read (YYYY-MM-DD).
    pub read: String,
}

/// Prices by provider type and model.
#[derive(Clone, Debug, Default)]
pub struct PriceCatalogue {
    entries: BTreeMap<(ProviderType, String), CatalogueEntry>,
}

impl PriceCatalogue {
    /// The catalogue compiled into this binary, parsed once.
    pub fn builtin() -> Result<&'static PriceCatalogue, CatalogueError> {
        static BUILTIN_CATALOGUE: OnceLock<Result<PriceCatalogue, CatalogueError>> =
            OnceLock::new();
        BUILTIN_CATALOGUE
            .get_or_init(|| PriceCatalogue::parse(BUILTIN))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses and checks a catalogue document.
    pub fn parse(text: &str) -> Result<Self, CatalogueError> {
        let file: CatalogueFile =
            serde_saphyr::from_str(text).map_err(|e| CatalogueError::Parse(e.to_string()))?;
        if file.version != 1 || file.currency != "USD" || file.unit != "per-million-tokens" {
            return Err(CatalogueError::Parse(
                "expected version 1, currency USD, unit per-million-tokens".into(),
            ));
        }
        let mut entries = BTreeMap::new();
        for entry in file.models {
            let err = |why: String| CatalogueError::Entry {
                provider: entry.provider.as_str(),
                model: entry.model.clone(),
                why,
            };
            resolve(&entry.pricing).map_err(|e| err(e.to_string()))?;
            if entry.read.parse::<jiff::civil::Date>().is_err() {
                return Err(err(format!(
                    "read {:?} is not a YYYY-MM-DD date",
                    entry.read
                )));
            }
            if !entry.source.starts_with("https://") {
                return Err(err("source must be an https URL".into()));
            }
            let key = (entry.provider, entry.model.clone());
            if entries.insert(key, entry.clone()).is_some() {
                return Err(err("listed twice".into()));
            }
        }
        Ok(Self { entries })
    }

    /// The entry for `model` of a provider of type `provider`.
    pub fn lookup(&self, provider: ProviderType, model: &str) -> Option<&CatalogueEntry> {
        self.entries.get(&(provider, model.to_owned()))
    }

    /// Every entry, sorted by provider type and model.
    pub fn entries(&self) -> impl Iterator<Item = &CatalogueEntry> {
        self.entries.values()
    }

    /// Resolved prices and their source for `model`, if the catalogue has them.
    pub fn price(&self, provider: ProviderType, model: &str) -> Option<(Pricing, PriceSource)> {
        let entry = self.lookup(provider, model)?;
        let pricing = resolve(&entry.pricing).ok()?;
        Some((
            pricing,
            PriceSource::Catalogue {
                source: entry.source.clone(),
                read: entry.read.clone(),
            },
        ))
    }
}

/// Applies the pricing defaults: cached input and cache writes at the input price, 1-hour
/// cache writes at twice the input price, reasoning at the output price.
pub fn resolve(p: &ModelPricing) -> Result<Pricing, MoneyError> {
    let input = p.input.to_decimal()?;
    let output = p.output.to_decimal()?;
    let or = |m: &Option<Money>, default| m.as_ref().map_or(Ok(default), Money::to_decimal);
    Ok(Pricing {
        input,
        output,
        cached_input: or(&p.cached_input, input)?,
        cache_write: or(&p.cache_write, input)?,
        cache_write_1h: Some(or(
            &p.cache_write_1h,
            input
                .checked_mul(rust_decimal::Decimal::TWO)
                .unwrap_or(rust_decimal::Decimal::MAX),
        )?),
        reasoning: or(&p.reasoning, output)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_and_has_sources() {
        let catalogue = PriceCatalogue::builtin().unwrap();
        assert!(catalogue.entries().count() > 0);
        for e in catalogue.entries() {
            assert!(e.source.starts_with("https://"), "{}", e.model);
        }
    }

    #[test]
    fn defaults_follow_input_and_output() {
        let p = resolve(&ModelPricing {
            input: "3".into(),
            output: "15".into(),
            cached_input: Some("0.3".into()),
            cache_write: None,
            cache_write_1h: None,
            reasoning: None,
        })
        .unwrap();
        assert_eq!(p.cached_input.to_string(), "0.3");
        assert_eq!(p.cache_write.to_string(), "3");
        assert_eq!(p.cache_write_1h.unwrap().to_string(), "6");
        assert_eq!(p.reasoning.to_string(), "15");
    }

    #[test]
    fn malformed_entries_are_refused_by_name() {
        let doc = |price: &str, read: &str| {
            format!(
                "version: 1\ncurrency: USD\nunit: per-million-tokens\nmodels:\n  - provider: openai\n    model: m\n    input: \"{price}\"\n    output: \"1\"\n    source: https://example.com/pricing\n    read: \"{read}\"\n"
            )
        };
        assert!(PriceCatalogue::parse(&doc("1.5", "2026-11-22")).is_ok());
        let err = PriceCatalogue::parse(&doc("1,5", "2026-11-22"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("openai/m"), "{err}");
        let err = PriceCatalogue::parse(&doc("1", "yesterday"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("YYYY-MM-DD"), "{err}");
    }
}
