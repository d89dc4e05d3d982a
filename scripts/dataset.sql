-- A SaaS-sized dataset for scripts/bench-dataset.sh (PostgreSQL): on top of what the script
-- made through the API (user 1, org 1 `bench` with projects p1…p10), orgs 2…:orgs with an
-- owner each and :projects projects each, :runs runs per project with two stages each and an
-- outbox entry, one log chunk for every tenth run, and :queued queued runs per org (the last
-- runs of each org's first project) that the scheduler has not admitted yet.
--
--   psql -v orgs=1000 -v projects=10 -v runs=100 -v queued=10 -f scripts/dataset.sql URL
\set ON_ERROR_STOP on
BEGIN;

INSERT INTO users (email, name, email_verified)
SELECT 'owner' || n || '@example.com', 'Owner ' || n, true
FROM generate_series(2, :orgs) AS n;

INSERT INTO orgs (slug, name, max_concurrent_runs)
SELECT 'org-' || n, 'Org ' || n, 5
FROM generate_series(2, :orgs) AS n;

INSERT INTO memberships (org_id, user_id, role)
SELECT o.id, u.id, 'owner'
FROM orgs o JOIN users u ON u.email = 'owner' || substr(o.slug, 5) || '@example.com'
WHERE o.slug LIKE 'org-%';

INSERT INTO projects (org_id, slug, name, repo_url, webhook_secret_enc)
SELECT o.id, 'p' || p, 'Project ' || p,
       'https://git.example.com/' || o.slug || '/p' || p || '.git',
       (SELECT webhook_secret_enc FROM projects WHERE id = 1)
FROM orgs o CROSS JOIN generate_series(1, :projects) AS p
WHERE o.slug LIKE 'org-%';

-- Runs 1…:runs of every project, finished a day apart going back from now; the last :queued
-- of each org's p1 are queued instead, and inserted last (they are the newest rows, as in a
-- live database).
INSERT INTO runs (org_id, project_id, number, status, trigger, git_ref, commit_sha, params,
                  queued_at, started_at, finished_at, attempt, worker, log_lines, log_bytes)
SELECT p.org_id, p.id, n,
       CASE WHEN p.slug = 'p1' AND n > :runs - :queued THEN 'queued'
            WHEN n % 10 = 3 THEN 'failed' ELSE 'succeeded' END,
       'push', 'refs/heads/main', md5(p.id::text || '-' || n::text), '{}',
       now() - make_interval(hours => ((:runs - n) * 24 + p.id % 24)::int),
       CASE WHEN p.slug = 'p1' AND n > :runs - :queued THEN NULL
            ELSE now() - make_interval(hours => ((:runs - n) * 24 + p.id % 24)::int) + interval '2 seconds' END,
       CASE WHEN p.slug = 'p1' AND n > :runs - :queued THEN NULL
            ELSE now() - make_interval(hours => ((:runs - n) * 24 + p.id % 24)::int) + interval '95 seconds' END,
       CASE WHEN p.slug = 'p1' AND n > :runs - :queued THEN 0 ELSE 1 END,
       CASE WHEN p.slug = 'p1' AND n > :runs - :queued THEN NULL ELSE 'worker-' || (n % 8) END,
       120, 9000
FROM projects p CROSS JOIN generate_series(1, :runs) AS n
ORDER BY CASE WHEN p.slug = 'p1' AND n > :runs - :queued THEN 1 ELSE 0 END, p.id, n;

UPDATE projects p SET next_run_number = :runs + 1;

INSERT INTO run_outbox (run_id, created_at, published_at)
SELECT id, queued_at, CASE WHEN status = 'queued' THEN NULL ELSE queued_at END
FROM runs;

INSERT INTO run_stages (run_id, seq, name, status, started_at, finished_at)
SELECT r.id, s.seq, s.name,
       CASE WHEN r.status = 'queued' THEN 'pending'
            WHEN r.status = 'failed' AND s.seq = 1 THEN 'failed' ELSE 'succeeded' END,
       r.started_at, r.finished_at
FROM runs r CROSS JOIN (VALUES (0, 'Build'), (1, 'Test')) AS s (seq, name);

INSERT INTO run_log_chunks (run_id, seq, first_line, lines, bytes)
SELECT id, 0, 0, 120, 9000 FROM runs WHERE id % 10 = 0;

INSERT INTO audit_log (org_id, actor_user_id, action, target_type, target_id, details, created_at)
SELECT o.id, NULL, 'project.create', 'project', 'p' || n, '{}', now() - make_interval(days => n)
FROM orgs o CROSS JOIN generate_series(1, 20) AS n;

COMMIT;
-- What autovacuum does after a bulk load: statistics, and the visibility map that lets
-- queries answer from an index alone.
VACUUM ANALYZE;
