-- GIN twins for FerretDB's indexes (run on FerretDB's PostgreSQL database by infra.sh up;
-- idempotent; needs a superuser, as event triggers do).
--
-- FerretDB 1.24 pushes a top-level equality down to PostgreSQL as
--     _jsonb->'field' @> '<value>'
-- and the B-tree expression indexes it creates for MongoDB indexes cannot serve `@>`: every
-- `_id` read and every equality filter reads the whole table. A GIN index with the
-- jsonb_path_ops operator class on the same expression can. So: whenever FerretDB creates a
-- B-tree index whose leading column is `_jsonb -> 'field'` (a top-level field, `_id`
-- included: FerretDB creates `_id_` with every collection), this trigger creates its GIN
-- twin `<index>_gin` on that field. The services' own `create_index` calls (the same code
-- that runs against MongoDB) thus decide which fields get one. Existing indexes get their
-- twins when this file runs.
--
-- The twins are made with `fastupdate = off`: with PostgreSQL's default, new entries wait
-- in a pending list that every search reads through until a vacuum merges it, so reads
-- right after a bulk import (10,000 users) were slower than before it.

CREATE SCHEMA IF NOT EXISTS clarion_meta;

-- The GIN twin of one B-tree index, if it has one to get: its definition, or NULL.
CREATE OR REPLACE FUNCTION clarion_meta.gin_twin_ddl(btree regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  am text;
  tbl regclass;
  expr text;
  twin text;
BEGIN
  SELECT a.amname, i.indrelid::regclass, pg_get_indexdef(i.indexrelid, 1, false)
    INTO am, tbl, expr
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am a ON a.oid = c.relam
   WHERE i.indexrelid = btree;
  -- Only a B-tree whose leading column is one top-level field of _jsonb.
  IF am IS DISTINCT FROM 'btree' OR expr !~ '^\(*_jsonb -> ''[^'']+''::text\)*$' THEN
    RETURN NULL;
  END IF;
  twin := left((SELECT relname FROM pg_class WHERE oid = btree), 59) || '_gin';
  RETURN format(
    'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s) jsonb_path_ops) WITH (fastupdate = off)',
    twin, tbl, trim(BOTH '()' FROM expr)
  );
END;
$$;

CREATE OR REPLACE FUNCTION clarion_meta.gin_twins_on_create() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  created record;
  ddl text;
BEGIN
  FOR created IN
    SELECT objid FROM pg_event_trigger_ddl_commands()
     WHERE command_tag = 'CREATE INDEX' AND object_type = 'index'
  LOOP
    ddl := clarion_meta.gin_twin_ddl(created.objid::regclass);
    IF ddl IS NOT NULL THEN
      EXECUTE ddl;
    END IF;
  END LOOP;
END;
$$;

DROP EVENT TRIGGER IF EXISTS clarion_gin_twins;
CREATE EVENT TRIGGER clarion_gin_twins ON ddl_command_end
  WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION clarion_meta.gin_twins_on_create();

-- The indexes that exist already (a data folder from before this file).
DO $$
DECLARE
  existing record;
  ddl text;
BEGIN
  FOR existing IN
    SELECT i.indexrelid
      FROM pg_index i
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'clarion_meta')
       AND EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = t.oid AND attname = '_jsonb' AND NOT attisdropped)
  LOOP
    ddl := clarion_meta.gin_twin_ddl(existing.indexrelid::regclass);
    IF ddl IS NOT NULL THEN
      EXECUTE ddl;
    END IF;
  END LOOP;
END;
$$;

-- Twins made before `fastupdate = off`: switch it off and merge their pending lists.
DO $$
DECLARE
  twin record;
BEGIN
  FOR twin IN
    SELECT c.oid::regclass AS idx
      FROM pg_class c
      JOIN pg_am a ON a.oid = c.relam
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE a.amname = 'gin' AND c.relkind = 'i' AND c.relname LIKE '%\_gin'
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'clarion_meta')
       AND NOT coalesce(c.reloptions @> ARRAY['fastupdate=off'], false)
  LOOP
    EXECUTE format('ALTER INDEX %s SET (fastupdate = off)', twin.idx);
    PERFORM gin_clean_pending_list(twin.idx);
  END LOOP;
END;
$$;
