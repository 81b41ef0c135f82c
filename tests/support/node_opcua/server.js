// An OPC 40001 Machinery server built with node-opcua, the second OPC UA stack in kooperant's tests.
//
// Usage: node server.js --port PORT --pki DIR --machines JSON [--secure]
//                       [--max-nodes-per-read N] [--max-monitored-items-per-call N]
//                       [--max-monitored-items-per-subscription N]
//   JSON is a list of {"browseName", "manufacturer", "model", "serialNumber", "state"} objects.
//   DIR receives the server's self-signed certificate. The tests pass a temporary folder, so
//   nothing is written to the home directory.
//   The two limits set Server/ServerCapabilities/OperationLimits, which node-opcua enforces by
//   rejecting larger Read and CreateMonitoredItems requests with BadTooManyOperations. The
//   default 0 means no limit. --max-monitored-items-per-subscription makes the server reject
//   each monitored item beyond N in one subscription with BadTooManyMonitoredItems; the default
//   0 keeps node-opcua's own limit of 100000.
//
// The server listens on 127.0.0.1 only and offers the None security policy only. With --secure it
// offers only Basic256Sha256, Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss with Sign and
// SignAndEncrypt, and accepts a client certificate only from DIR/trusted/certs: an unknown one is
// rejected and stored in DIR/rejected. It loads the
// standard, DI, IA and Machinery nodesets of node-opcua-nodesets in that order, because the
// Machinery model shipped in node-opcua-nodesets 2.179.0 (1.04.1) requires the IA model.
//
// Protocol on stdin and stdout, one line each:
//   stdout "ready opc.tcp://127.0.0.1:PORT"      once the server accepts connections
//   stdin  "set MACHINE STATE"                   STATE is a state of MachineryItemState_StateMachineType
//   stdout "ok set MACHINE STATE" or "error MESSAGE"
//   stdin  "reload-certificates"                 re-reads DIR/trusted and DIR/rejected
//   stdout "ok reload-certificates" or "error MESSAGE"
// node-opcua-pki learns of files moved between its folders from file watchers, which sometimes
// miss a move. Its documentation advises calling reloadCertificates after outside changes.
// The server stops when stdin closes or on SIGTERM. Errors before "ready" go to stderr, exit code 1.
"use strict";

// node-opcua 2.180 prints its warnings with console.log (node-opcua-debug), so they go to
// stderr here and stdout carries only the protocol lines above.
console.log = console.error;
console.info = console.error;

const readline = require("node:readline");
const { parseArgs } = require("node:util");
const {
    OPCUAServer,
    OPCUACertificateManager,
    MessageSecurityMode,
    SecurityPolicy,
    DataType,
    promoteToStateMachine,
} = require("node-opcua");
const { nodesets } = require("node-opcua-nodesets");

const DI_URI = "http://opcfoundation.org/UA/DI/";
const MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/";
const TEST_URI = "urn:kooperant:test:node-opcua-machinery-server";

// NodeIds in the Machinery namespace, fixed by OPC 40001-1.
const MACHINES_FOLDER_ID = 1001;
const ITEM_STATE_MACHINE_TYPE_ID = 1002;
const MACHINE_IDENTIFICATION_TYPE_ID = 1012;

const STATES = ["NotAvailable", "OutOfService", "NotExecuting", "Executing"];

function readOptions() {
    const { values } = parseArgs({
        options: {
            port: { type: "string" },
            pki: { type: "string" },
            machines: { type: "string" },
            "max-nodes-per-read": { type: "string", default: "0" },
            "max-monitored-items-per-call": { type: "string", default: "0" },
            "max-monitored-items-per-subscription": { type: "string", default: "0" },
            secure: { type: "boolean", default: false },
        },
    });
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new Error(`invalid --port ${JSON.stringify(values.port)}: expected 1 to 65535`);
    }
    if (!values.pki) {
        throw new Error("missing --pki: pass a folder for the server certificate");
    }
    const machines = JSON.parse(values.machines || "[]");
    for (const machine of machines) {
        if (!STATES.includes(machine.state)) {
            throw new Error(`invalid state ${JSON.stringify(machine.state)} of machine ${machine.browseName}`);
        }
    }
    const operationLimits = {
        maxNodesPerRead: readLimit(values, "max-nodes-per-read"),
        maxMonitoredItemsPerCall: readLimit(values, "max-monitored-items-per-call"),
    };
    const maxMonitoredItemsPerSubscription = readLimit(values, "max-monitored-items-per-subscription");
    return {
        port,
        pki: values.pki,
        machines,
        operationLimits,
        maxMonitoredItemsPerSubscription,
        secure: values.secure,
    };
}

function readLimit(values, name) {
    const limit = Number(values[name]);
    if (!Number.isInteger(limit) || limit < 0) {
        throw new Error(`invalid --${name} ${JSON.stringify(values[name])}: expected 0 or more`);
    }
    return limit;
}

function addMachine(addressSpace, namespace, machine) {
    const di = addressSpace.getNamespaceIndex(DI_URI);
    const machinery = addressSpace.getNamespaceIndex(MACHINERY_URI);
    const machinesFolder = addressSpace.findNode(`ns=${machinery};i=${MACHINES_FOLDER_ID}`);

    const machineNode = namespace.addObject({
        browseName: machine.browseName,
        organizedBy: machinesFolder,
    });

    const identificationType = addressSpace.findNode(`ns=${machinery};i=${MACHINE_IDENTIFICATION_TYPE_ID}`);
    const identification = identificationType.instantiate({
        browseName: { name: "Identification", namespaceIndex: di },
        componentOf: machineNode,
        optionals: ["Model"],
    });
    const texts = { Manufacturer: machine.manufacturer, Model: machine.model };
    for (const [name, text] of Object.entries(texts)) {
        identification
            .getChildByName(name, di)
            .setValueFromSource({ dataType: DataType.LocalizedText, value: { text } });
    }
    identification
        .getChildByName("SerialNumber", di)
        .setValueFromSource({ dataType: DataType.String, value: machine.serialNumber });

    // addFolder accepts only a folder as parent, and the machine is a plain object.
    const buildingBlocks = namespace.addObject({
        browseName: { name: "MachineryBuildingBlocks", namespaceIndex: machinery },
        componentOf: machineNode,
        typeDefinition: "FolderType",
    });
    const stateMachineType = addressSpace.findNode(`ns=${machinery};i=${ITEM_STATE_MACHINE_TYPE_ID}`);
    const itemState = stateMachineType.instantiate({
        browseName: { name: "MachineryItemState", namespaceIndex: machinery },
        componentOf: buildingBlocks,
        optionals: ["CurrentState.Number"],
    });
    const stateMachine = promoteToStateMachine(itemState);
    stateMachine.setState(machine.state);
    return stateMachine;
}

async function handleCommand(line, stateMachines, certificateManager) {
    if (line.trim() === "reload-certificates") {
        await certificateManager.reloadCertificates();
        return "ok reload-certificates";
    }
    // The machine's browse name may contain spaces, so the state is the last word.
    const match = /^set (.+) (\S+)$/.exec(line.trim());
    if (match === null) {
        return (
            `error invalid command ${JSON.stringify(line)}: ` +
            'expected "set MACHINE STATE" or "reload-certificates"'
        );
    }
    const [, machine, state] = match;
    const stateMachine = stateMachines.get(machine);
    if (stateMachine === undefined) {
        return `error machine ${JSON.stringify(machine)} not found; known: ${[...stateMachines.keys()].join(", ")}`;
    }
    if (!STATES.includes(state)) {
        return `error invalid state ${JSON.stringify(state)}; expected one of ${STATES.join(", ")}`;
    }
    stateMachine.setState(state);
    return `ok set ${machine} ${state}`;
}

async function main() {
    const options = readOptions();
    const certificateManager = new OPCUACertificateManager({
        rootFolder: options.pki,
        automaticallyAcceptUnknownCertificate: !options.secure,
    });
    const security = options.secure
        ? {
              securityPolicies: [
                  SecurityPolicy.Basic256Sha256,
                  SecurityPolicy.Aes128_Sha256_RsaOaep,
                  SecurityPolicy.Aes256_Sha256_RsaPss,
              ],
              securityModes: [MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
          }
        : { securityPolicies: [SecurityPolicy.None], securityModes: [MessageSecurityMode.None] };
    const server = new OPCUAServer({
        host: "127.0.0.1",
        hostname: "127.0.0.1",
        port: options.port,
        nodeset_filename: [nodesets.standard, nodesets.di, nodesets.ia, nodesets.machinery],
        ...security,
        serverCertificateManager: certificateManager,
        userCertificateManager: certificateManager,
        buildInfo: { productName: "kooperant node-opcua test Machinery server" },
        serverCapabilities: {
            operationLimits: options.operationLimits,
            // node-opcua replaces 0 by its default.
            maxMonitoredItemsPerSubscription: options.maxMonitoredItemsPerSubscription,
        },
    });
    await server.initialize();

    const addressSpace = server.engine.addressSpace;
    const namespace = addressSpace.registerNamespace(TEST_URI);
    const stateMachines = new Map();
    for (const machine of options.machines) {
        stateMachines.set(machine.browseName, addMachine(addressSpace, namespace, machine));
    }

    await server.start();
    process.stdout.write(`ready ${server.getEndpointUrl()}\n`);

    const input = readline.createInterface({ input: process.stdin });
    // Commands run one after another, so replies come in the order of the commands.
    let previous = Promise.resolve();
    input.on("line", (line) => {
        previous = previous.then(async () => {
            let reply;
            try {
                reply = await handleCommand(line, stateMachines, certificateManager);
            } catch (error) {
                reply = `error ${String(error.message || error).replace(/\s+/g, " ")}`;
            }
            process.stdout.write(`${reply}\n`);
        });
    });

    let stopping = false;
    const stop = async () => {
        if (stopping) return;
        stopping = true;
        input.close();
        await server.shutdown(0);
        process.exit(0);
    };
    input.on("close", stop);
    process.on("SIGTERM", stop);
}

main().catch((error) => {
    process.stderr.write(`node-opcua test server failed: ${error.stack || error}\n`);
    process.exit(1);
});
