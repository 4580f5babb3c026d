"""The domain model at the bottom: state, booking, catalog, tour rules, caller identity, words."""
