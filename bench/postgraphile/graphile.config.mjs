// PostGraphile v5 as it comes: the amber preset, the public schema of the
// benchmark database, no plugins beyond the preset's defaults. Only what
// any deployment must say is set: where the database is, where to listen, the
// pool size (the same as Backplane's), and production mode (no explain, no
// GraphiQL, no watch).
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public"],
      poolConfig: { max: Number(process.env.POOL_MAX ?? 16) },
    }),
  ],
  grafserv: {
    host: "127.0.0.1",
    port: Number(process.env.PORT ?? 18482),
    graphiql: false,
    watch: false,
  },
  grafast: { explain: false },
};

export default preset;
