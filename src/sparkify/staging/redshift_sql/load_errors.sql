-- What the COPY into one load table rejected: its table id (pg_class, on the leader node), then the
-- rejected records of that table (stl_load_errors, on the compute nodes; the two are not joined, as a
-- leader-node catalog cannot be joined with a system table). A load table is created anew for each
-- attempt, so its id names this attempt's COPY alone.
select c.oid as table_id
from pg_class as c
inner join pg_namespace as n on c.relnamespace = n.oid
where n.nspname = %s and c.relname = %s;

select
    count(*) over () as rejected,
    line_number,
    rtrim(filename) as filename,
    rtrim(raw_line) as raw_line,
    rtrim(err_reason) as err_reason
from stl_load_errors
where tbl = %s
order by line_number
limit 5;
