-- The legend's counts (`type_counts`: live objects per kind and type) by an index-only
-- scan instead of reading every row of the tenant. Partial (live rows only), so
-- tombstones cost it nothing.
CREATE INDEX objects_live_by_kind_type ON objects (tenant, kind, type) WHERE NOT deleted;
