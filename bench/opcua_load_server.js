// A node-opcua OPC UA server of machine tools whose every state variable changes each second.
//
// The faster twin of bench/opcua_load_server.py: the same address space, the same values and the
// same stdout protocol, so bench/agent_footprint.py runs either. asyncua needs about 145 µs of
// CPU per value change with a monitored item, too much for 10,000 changes a second on two cores.
//
// Usage: node bench/opcua_load_server.js --port PORT [--machines 500] [--items-per-machine 20]
//                                        [--interval 1] [--report-seconds 5] [--pki DIR]
//
// node-opcua 2.180.0 is loaded from tests/support/node_opcua/node_modules, found from this file's
// own location; install it with `npm ci --prefix tests/support/node_opcua --no-audit --no-fund`.
// Only the standard nodeset is loaded. The machines sit in the OPC 40001 `Machines` folder
// (ns=Machinery;i=1001) and have the variables the opcua adapter monitors on an OPC 40501
// machine tool, found by browse name, in this order up to --items-per-machine:
//   MachineryItemState/CurrentState with Id and Number (3), MachineryOperationMode/CurrentState
//   with Id and Number (3), Monitoring/MachineTool/OperationMode (1),
//   Production/ActiveProgram/State/CurrentState with Id and Number (3),
//   Production/ProductionPlan/JobN/State/CurrentState with Id and Number (3 per job).
//
// Once every variable is monitored, each gets a new value with a new source timestamp once per
// --interval, spread over the interval in 50 slices of machines, not all at once. Item state and
// operation mode alternate between (Executing, Processing) and (NotExecuting, Setup), which
// OPC 40001-1 both read as Executing. They are written in an order that keeps each intermediate
// pair Executing too. So the machines' states hold, and offers go out only at the agent's
// periodic republish.
//
// stdout: "ready PORT variables=N" once listening, then every --report-seconds
// "status monitored_items=N writes=N notifications=N write_seconds=S": the monitored items of
// all subscriptions, the values written so far, the data change notifications sent in publish
// responses so far (from each subscription's diagnostics), and the time the last
// slice of writes took (wall time). Warnings of node-opcua go to stderr. Stops on SIGTERM or SIGINT.
"use strict";

console.log = console.error;
console.info = console.error;

const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { parseArgs } = require("node:util");

const MODULES = path.resolve(__dirname, "..", "tests", "support", "node_opcua", "node_modules");
const {
    OPCUAServer,
    OPCUACertificateManager,
    MessageSecurityMode,
    SecurityPolicy,
    DataType,
    StatusCodes,
} = require(path.join(MODULES, "node-opcua"));
const { nodesets } = require(path.join(MODULES, "node-opcua-nodesets"));

const MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/";
const LOAD_URI = "urn:kooperant:bench:load";
const MACHINES_FOLDER_ID = 1001;
const ITEM_STATES = { NotExecuting: 2, Executing: 3 };
const OPERATION_MODES = { Setup: 2, Processing: 3 };
const PRODUCTION_STATES = { Initializing: 0, Running: 1, Ended: 2, Interrupted: 3, Aborted: 4 };
const PRODUCTION_NAMES = Object.keys(PRODUCTION_STATES);
const SLICES = 50;

function fail(message) {
    process.stderr.write(`opcua_load_server.js: ${message}\n`);
    process.exit(2);
}

function readOptions() {
    let values;
    try {
        ({ values } = parseArgs({
            options: {
                port: { type: "string" },
                machines: { type: "string", default: "500" },
                "items-per-machine": { type: "string", default: "20" },
                interval: { type: "string", default: "1" },
                "report-seconds": { type: "string", default: "5" },
                pki: { type: "string" },
            },
        }));
    } catch (error) {
        fail(error.message);
    }
    if (values.port === undefined) fail("missing --port: pass the TCP port to listen on");
    const integer = (name, low, high) => {
        const value = Number(values[name]);
        if (!Number.isInteger(value) || value < low || value > high) {
            fail(`invalid --${name} ${JSON.stringify(values[name])}: expected ${low} to ${high}`);
        }
        return value;
    };
    const seconds = (name) => {
        const value = Number(values[name]);
        if (!(value > 0)) {
            fail(`invalid --${name} ${JSON.stringify(values[name])}: expected a positive number`);
        }
        return value;
    };
    return {
        port: integer("port", 1, 65535),
        machines: integer("machines", 1, 100000),
        itemsPerMachine: integer("items-per-machine", 1, 40),
        interval: seconds("interval"),
        reportSeconds: seconds("report-seconds"),
        pki: values.pki,
    };
}

class AddressSpaceBuilder {
    constructor(addressSpace) {
        this.addressSpace = addressSpace;
        this.machinery = addressSpace.registerNamespace(MACHINERY_URI);
        this.load = addressSpace.registerNamespace(LOAD_URI);
        this.stateNodes = {};
        const objects = addressSpace.rootFolder.objects;
        const states = this.load.addFolder(objects, { browseName: "States", nodeId: "s=States" });
        for (const name of [...Object.keys(ITEM_STATES), ...Object.keys(OPERATION_MODES), ...PRODUCTION_NAMES]) {
            if (!(name in this.stateNodes)) {
                this.stateNodes[name] = this.load.addObject({
                    organizedBy: states,
                    browseName: name,
                    nodeId: `s=State.${name}`,
                }).nodeId;
            }
        }
        this.folder = this.machinery.addFolder(objects, {
            browseName: "Machines",
            nodeId: `i=${MACHINES_FOLDER_ID}`,
        });
    }

    addMachine(browseName, itemsPerMachine) {
        const node = this.load.addObject({ organizedBy: this.folder, browseName, nodeId: `s=${browseName}` });
        const objects = new Map();
        const pathObject = (names) => {
            let current = node;
            for (let depth = 1; depth <= names.length; depth += 1) {
                const key = `${browseName}.${names.slice(0, depth).join(".")}`;
                if (!objects.has(key)) {
                    objects.set(key, this.load.addObject({ componentOf: current, browseName: names[depth - 1], nodeId: `s=${key}` }));
                }
                current = objects.get(key);
            }
            return current;
        };
        let left = itemsPerMachine;
        const stateMachine = (names) => {
            if (left <= 0) return null;
            const parent = pathObject(names);
            const base = `${browseName}.${names.join(".")}.CurrentState`;
            const currentState = this.load.addVariable({
                componentOf: parent,
                browseName: "CurrentState",
                nodeId: `s=${base}`,
                dataType: "LocalizedText",
                value: { dataType: DataType.LocalizedText, value: { text: "" } },
            });
            const created = { currentState, stateId: null, number: null };
            left -= 1;
            if (left > 0) {
                created.stateId = this.load.addVariable({
                    propertyOf: currentState,
                    browseName: "Id",
                    nodeId: `s=${base}.Id`,
                    dataType: "NodeId",
                    value: { dataType: DataType.NodeId, value: this.stateNodes.NotExecuting },
                });
                left -= 1;
            }
            if (left > 0) {
                created.number = this.load.addVariable({
                    propertyOf: currentState,
                    browseName: "Number",
                    nodeId: `s=${base}.Number`,
                    dataType: "UInt32",
                    value: { dataType: DataType.UInt32, value: 0 },
                });
                left -= 1;
            }
            return created;
        };
        const machine = { itemState: null, operationMode: null, toolMode: null, production: [] };
        machine.itemState = stateMachine(["MachineryItemState"]);
        machine.operationMode = stateMachine(["MachineryOperationMode"]);
        if (left > 0) {
            machine.toolMode = this.load.addVariable({
                componentOf: pathObject(["Monitoring", "MachineTool"]),
                browseName: "OperationMode",
                nodeId: `s=${browseName}.Monitoring.MachineTool.OperationMode`,
                dataType: "Int32",
                value: { dataType: DataType.Int32, value: 1 },
            });
            left -= 1;
        }
        const program = stateMachine(["Production", "ActiveProgram", "State"]);
        if (program !== null) machine.production.push(program);
        for (let job = 1; left > 0; job += 1) {
            machine.production.push(stateMachine(["Production", "ProductionPlan", `Job${job}`, "State"]));
        }
        return machine;
    }
}

function variableCount(machine) {
    let count = machine.toolMode === null ? 0 : 1;
    for (const state of [machine.itemState, machine.operationMode, ...machine.production]) {
        if (state !== null) count += 1 + (state.stateId !== null) + (state.number !== null);
    }
    return count;
}

class Writer {
    constructor(machines, stateNodes) {
        this.machines = machines;
        this.stateNodes = stateNodes;
        this.writes = 0;
        this.lastSliceSeconds = 0;
    }

    writeState(state, name, number, timestamp) {
        if (state === null) return;
        const good = StatusCodes.Good;
        state.currentState.setValueFromSource({ dataType: DataType.LocalizedText, value: { text: name } }, good, timestamp);
        this.writes += 1;
        if (state.stateId !== null) {
            state.stateId.setValueFromSource({ dataType: DataType.NodeId, value: this.stateNodes[name] }, good, timestamp);
            this.writes += 1;
        }
        if (state.number !== null) {
            state.number.setValueFromSource({ dataType: DataType.UInt32, value: number }, good, timestamp);
            this.writes += 1;
        }
    }

    writeMachine(index, round) {
        const machine = this.machines[index];
        const timestamp = new Date();
        // Moving to Setup writes the mode first, moving to Processing the item state first, so
        // the machine reads Executing after every single write.
        const toSetup = round % 2 === 1;
        const item = toSetup ? "NotExecuting" : "Executing";
        const mode = toSetup ? "Setup" : "Processing";
        const writeItem = () => this.writeState(machine.itemState, item, ITEM_STATES[item], timestamp);
        const writeMode = () => this.writeState(machine.operationMode, mode, OPERATION_MODES[mode], timestamp);
        if (toSetup) {
            writeMode();
            writeItem();
        } else {
            writeItem();
            writeMode();
        }
        if (machine.toolMode !== null) {
            // Automatic (1) and AutoWithManualIntervention (3) of MachineOperationMode.
            const toolMode = 1 + 2 * ((round + index) % 2);
            machine.toolMode.setValueFromSource({ dataType: DataType.Int32, value: toolMode }, StatusCodes.Good, timestamp);
            this.writes += 1;
        }
        machine.production.forEach((state, offset) => {
            const name = PRODUCTION_NAMES[(round + index + offset) % PRODUCTION_NAMES.length];
            this.writeState(state, name, PRODUCTION_STATES[name], timestamp);
        });
    }

    // Write slice `slice` of SLICES of the machines, as part of round `round`.
    writeSlice(round, slice) {
        const started = process.hrtime.bigint();
        const count = this.machines.length;
        const first = Math.floor((slice * count) / SLICES);
        const end = Math.floor(((slice + 1) * count) / SLICES);
        for (let index = first; index < end; index += 1) this.writeMachine(index, round);
        this.lastSliceSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    }
}

class Counters {
    constructor(engine) {
        this.engine = engine;
        // Each subscription's notification count, kept after the subscription is gone.
        this.sent = new Map();
    }

    subscriptions() {
        const found = [];
        for (const session of this.engine.getSessions()) {
            if (session.publishEngine) found.push(...session.publishEngine.subscriptions);
        }
        return found;
    }

    monitoredItems() {
        return this.subscriptions().reduce((total, subscription) => total + subscription.monitoredItemCount, 0);
    }

    notifications() {
        for (const subscription of this.subscriptions()) {
            const diagnostics = subscription.subscriptionDiagnostics;
            if (diagnostics) {
                this.sent.set(`${subscription.sessionId}/${subscription.id}`, diagnostics.dataChangeNotificationsCount);
            }
        }
        let total = 0;
        for (const count of this.sent.values()) total += count;
        return total;
    }
}

async function main() {
    const options = readOptions();
    const pki = options.pki || fs.mkdtempSync(path.join(os.tmpdir(), "kooperant-load-pki-"));
    const removePki = options.pki === undefined;
    const certificateManager = new OPCUACertificateManager({
        rootFolder: pki,
        automaticallyAcceptUnknownCertificate: true,
    });
    const server = new OPCUAServer({
        host: "127.0.0.1",
        hostname: "127.0.0.1",
        port: options.port,
        nodeset_filename: [nodesets.standard],
        securityPolicies: [SecurityPolicy.None],
        securityModes: [MessageSecurityMode.None],
        serverCertificateManager: certificateManager,
        userCertificateManager: certificateManager,
        buildInfo: { productName: "kooperant node-opcua load server" },
        maxConnectionsPerEndpoint: 10,
        serverCapabilities: {
            maxMonitoredItemsPerSubscription: 100000,
            maxMonitoredItems: 1000000,
            operationLimits: { maxMonitoredItemsPerCall: 0, maxNodesPerRead: 0, maxNodesPerBrowse: 0 },
        },
    });
    await server.initialize();
    const builder = new AddressSpaceBuilder(server.engine.addressSpace);
    const machines = [];
    for (let number = 1; number <= options.machines; number += 1) {
        machines.push(builder.addMachine(`Machine-${String(number).padStart(4, "0")}`, options.itemsPerMachine));
    }
    const total = machines.reduce((sum, machine) => sum + variableCount(machine), 0);
    await server.start();
    process.stdout.write(`ready ${options.port} variables=${total}\n`);

    const writer = new Writer(machines, builder.stateNodes);
    const counters = new Counters(server.engine);
    const reporter = setInterval(() => {
        process.stdout.write(
            `status monitored_items=${counters.monitoredItems()} writes=${writer.writes} ` +
                `notifications=${counters.notifications()} write_seconds=${writer.lastSliceSeconds.toFixed(4)}\n`,
        );
    }, options.reportSeconds * 1000);

    // The writes begin once every variable is monitored, so browsing does not wait behind them.
    let timer = null;
    const waiter = setInterval(() => {
        if (counters.monitoredItems() < total) return;
        clearInterval(waiter);
        const sliceMs = (options.interval * 1000) / SLICES;
        const start = performance.now();
        let step = 0;
        const tick = () => {
            writer.writeSlice(Math.floor(step / SLICES), step % SLICES);
            step += 1;
            // Scheduled against the start, so slow slices do not make the rate drift.
            timer = setTimeout(tick, Math.max(0, start + step * sliceMs - performance.now()));
        };
        tick();
    }, 200);

    let stopping = false;
    const stop = async () => {
        if (stopping) return;
        stopping = true;
        clearInterval(reporter);
        clearInterval(waiter);
        if (timer !== null) clearTimeout(timer);
        await server.shutdown(0);
        if (removePki) fs.rmSync(pki, { recursive: true, force: true });
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

main().catch((error) => {
    process.stderr.write(`opcua_load_server.js failed: ${error.stack || error}\n`);
    process.exit(1);
});
