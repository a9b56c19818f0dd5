"""The operator API's payments (`/api/ops/v1/`): a finance system records, lists, reverses
payments and refunds unapplied money, with an operator key acting as its staff user
(docs/api.md, "Operator payments")."""
