"""The DuckDB history store: its SQL, the store itself, and Parquet export."""
