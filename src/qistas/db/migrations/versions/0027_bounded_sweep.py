"""the claim's sweep of expired leases bounded: ``qistas_take`` with a tenth parameter, ``p_sweep``

A take gave back every expired lease of its project before looking for a task: after an outage
longer than the lease time, the first take of a large project ended all of them in one
transaction (90,000 leases: 5.2 s, where a take costs milliseconds). Now it gives back the
oldest ``p_sweep`` (``domain.assignments.SWEPT_PER_CLAIM``), and the rest only when it finds no
task (a slot may be held by one of them). The other steps are 0024's, in the same order.

The nine-parameter function of 0024 stays: a server of the previous version calls it until it
is restarted (migrations are additive; docs/deploy.md).

Revision ID: 0027_bounded_sweep
Revises: 0026_partial_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0027_bounded_sweep"
down_revision = "0026_partial_indexes"
branch_labels = None
depends_on = None

# The candidates of a claim, as in 0024.
CANDIDATES = """
        FROM tasks t
        WHERE t.project_id = p_project AND t.status = 'pending'
          AND (t.batch_id IS NULL OR t.batch_id IN (
                SELECT b.id FROM batches b WHERE b.project_id = p_project AND b.status = 'in_progress'))
          AND NOT EXISTS (SELECT a.id FROM assignments a
                          WHERE a.task_id = t.id AND a.annotator_id = p_annotator OFFSET 0)"""

TAKE = f"""
CREATE FUNCTION qistas_take(
    p_project bigint, p_annotator bigint, p_now timestamp, p_expires timestamp, p_ranked boolean,
    p_gold boolean, p_gold_on_probation boolean, p_annotator_key integer, p_project_key integer,
    p_sweep integer)
RETURNS TABLE (outcome text, lease_id bigint, task_id bigint, lease_status varchar, expires_at timestamp,
               created_at timestamp, seen_at timestamp, active_ms integer, task_status varchar, data jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_tasks bigint[];
    v_slots bigint[];
    v_lease assignments%ROWTYPE;
    v_task record;
    v_blocked boolean;
    v_fraud varchar;
    v_variant integer;
    v_gold boolean;
    v_outcome text;
    v_look integer;
    v_limit integer;
    v_swept bigint;
BEGIN
    -- One claim at a time per (annotator, project): a second sees the first's lease.
    PERFORM pg_advisory_xact_lock(p_annotator_key, p_project_key);

    v_limit := p_sweep;
    -- Two looks at most: the second only when the first found no task and giving back the rest
    -- of the expired leases frees a slot (a take after an outage, with many leases run out, gives
    -- back p_sweep of them, not all in one transaction).
    FOR v_look IN 1 .. 2 LOOP
        -- Expired leases of the project give their slots back (tasks locked in id order): the
        -- p_sweep that ran out first, and all the rest on the second look (v_limit NULL: no LIMIT).
        WITH stale AS (
            SELECT a.id FROM assignments a
            WHERE a.project_id = p_project AND a.status = 'active' AND a.expires_at <= p_now
            ORDER BY a.expires_at LIMIT v_limit
            FOR UPDATE SKIP LOCKED
        ), ended AS (
            UPDATE assignments a SET status = 'expired', ended_at = p_now
            FROM stale WHERE a.id = stale.id AND a.status = 'active'
            RETURNING a.task_id
        )
        SELECT array_agg(g.task_id ORDER BY g.task_id), array_agg(g.n ORDER BY g.task_id), coalesce(sum(g.n), 0)
        INTO v_tasks, v_slots, v_swept
        FROM (SELECT ended.task_id, count(*) AS n FROM ended GROUP BY ended.task_id) g;
        FOR i IN 1 .. coalesce(array_length(v_tasks, 1), 0) LOOP
            UPDATE tasks SET n_claimed = n_claimed - v_slots[i] WHERE id = v_tasks[i];
        END LOOP;

        IF v_look = 1 THEN
            -- The live lease the annotator holds here comes back (locked: a submit in flight goes first).
            SELECT a.* INTO v_lease FROM assignments a
            WHERE a.project_id = p_project AND a.annotator_id = p_annotator AND a.status = 'active'
              AND a.expires_at > p_now
            LIMIT 1 FOR UPDATE;
            IF FOUND THEN
                SELECT t.status, t.data INTO v_task FROM tasks t WHERE t.id = v_lease.task_id;
                IF v_task.status = 'pending' THEN
                    RETURN QUERY SELECT 'held'::text, v_lease.id, v_lease.task_id, v_lease.status, v_lease.expires_at,
                        v_lease.created_at, v_lease.seen_at, v_lease.active_ms, v_task.status, v_task.data;
                    RETURN;
                END IF;
                -- Its batch was canceled under the lease: end it, and serve another.
                UPDATE assignments SET status = 'expired', ended_at = p_now WHERE id = v_lease.id;
                UPDATE tasks SET n_claimed = n_claimed - 1 WHERE id = v_lease.task_id;
            END IF;

            SELECT s.blocked, s.fraud_status INTO v_blocked, v_fraud FROM worker_stats s
            WHERE s.project_id = p_project AND s.annotator_id = p_annotator;
            IF coalesce(v_blocked, false) THEN
                RETURN QUERY SELECT 'blocked'::text, NULL::bigint, NULL::bigint, NULL::varchar, NULL::timestamp,
                    NULL::timestamp, NULL::timestamp, NULL::integer, NULL::varchar, NULL::jsonb;
                RETURN;
            END IF;
            v_gold := CASE WHEN v_fraud = 'probation' THEN p_gold_on_probation ELSE p_gold END;
        ELSIF v_swept = 0 THEN
            EXIT;  -- nothing more was given back: no other task to find
        END IF;
        IF v_gold AND v_look = 1 THEN
            SELECT t.id, t.status, t.data INTO v_task {CANDIDATES}
              AND t.is_gold IS true
            ORDER BY t.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            IF FOUND THEN  -- a gold task takes any number of annotators, once each
                UPDATE tasks SET n_claimed = n_claimed + 1, required = n_claimed + 1
                WHERE id = v_task.id AND status = 'pending';
                v_outcome := 'gold';
            END IF;
        END IF;

        -- Finish what is open: started tasks with a free slot first, then the rest (in import order,
        -- or by serve_rank when active learning ranks them).
        FOR v_variant IN 1 .. 2 LOOP
            EXIT WHEN v_outcome IS NOT NULL;
            IF v_variant = 1 THEN
                SELECT t.id, t.status, t.data INTO v_task {CANDIDATES}
                  AND t.is_gold IS false AND t.n_claimed < t.required AND t.status = 'pending' AND t.n_claimed > 0
                ORDER BY t.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            ELSIF p_ranked THEN
                SELECT t.id, t.status, t.data INTO v_task {CANDIDATES}
                  AND t.is_gold IS false AND t.n_claimed < t.required AND t.n_claimed = 0
                ORDER BY t.serve_rank, t.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            ELSE
                SELECT t.id, t.status, t.data INTO v_task {CANDIDATES}
                  AND t.is_gold IS false AND t.n_claimed < t.required AND t.n_claimed = 0
                ORDER BY t.id LIMIT 1 FOR UPDATE SKIP LOCKED;
            END IF;
            CONTINUE WHEN NOT FOUND;
            UPDATE tasks SET n_claimed = n_claimed + 1
            WHERE id = v_task.id AND n_claimed < required AND status = 'pending';
            CONTINUE WHEN NOT FOUND;  -- the row lock prevents it
            v_outcome := 'leased';
        END LOOP;
        EXIT WHEN v_outcome IS NOT NULL;
        v_limit := NULL;
    END LOOP;
    IF v_outcome IS NULL THEN
        RETURN QUERY SELECT 'none'::text, NULL::bigint, NULL::bigint, NULL::varchar, NULL::timestamp,
            NULL::timestamp, NULL::timestamp, NULL::integer, NULL::varchar, NULL::jsonb;
        RETURN;
    END IF;
    -- The slot is taken (a gold task's or a regular one's): the lease.
    INSERT INTO assignments (task_id, project_id, annotator_id, status, created_at, expires_at)
    VALUES (v_task.id, p_project, p_annotator, 'active', p_now, p_expires) RETURNING * INTO v_lease;
    RETURN QUERY SELECT v_outcome, v_lease.id, v_lease.task_id, v_lease.status, v_lease.expires_at,
        v_lease.created_at, v_lease.seen_at, v_lease.active_ms, v_task.status, v_task.data;
END
$$
"""

SIGNATURE = ("qistas_take(bigint, bigint, timestamp, timestamp, boolean, boolean, boolean, integer, integer, "
             "integer)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAKE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
