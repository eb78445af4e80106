-- A drill's scratch database removed, also when a session is still leaving it (13+: FORCE).
DROP DATABASE IF EXISTS :"database" WITH (FORCE);
