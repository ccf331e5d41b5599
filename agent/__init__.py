"""pgradar.agent: model, settings, collection, derivations, plans, SQL shapes, classifiers and the runtime."""
