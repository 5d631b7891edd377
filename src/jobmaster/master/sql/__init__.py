"""What the SQL masters share: their dialects, the executor they run statements through, and the
operations that are the same SQL on every database (`store.SqlMasterStore`)."""
