-- A drill's scratch database (owned by the connecting superuser; the archive is restored without owners).
CREATE DATABASE :"database" ENCODING 'UTF8' TEMPLATE template0;
