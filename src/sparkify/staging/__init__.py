"""Landing the raw JSON in the warehouse's staging tables: the schema, the rules for bad input, the screen for
hostile files, and one loader per warehouse (called by ``sparkify.warehouses``)."""
